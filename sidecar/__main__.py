"""`python -m sidecar` is `chat-sidecar`."""

from sidecar.cli import main

if __name__ == "__main__":
    main()
