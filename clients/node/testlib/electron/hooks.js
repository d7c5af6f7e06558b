// Module resolution hook for the example-app tests: `import ... from 'electron'` gets ./standin.js. The importing
// module's query string is passed on, so each run of the example (main.mjs?run=N) gets its own Electron.
const STANDIN = new URL('./standin.js', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  if (specifier === 'electron') {
    const query = context.parentURL ? new URL(context.parentURL).search : '';
    return { url: STANDIN + query, format: 'module', shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
