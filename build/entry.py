"""The frozen binary's entry point: the same `main` as the `chat-sidecar` console script."""

from sidecar.cli import main

if __name__ == "__main__":
    main()
