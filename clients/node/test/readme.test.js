// The README's embedding recipe is the example the suite runs: every code block of the "Embedding in Electron"
// section marked `<!-- snippet: clients/node/<file> -->` must appear word for word in that file, and every file
// of examples/electron/ that an app needs is shown.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PACKAGE_DIR, REPO_DIR } from '../testlib/helpers.js';

async function embeddingSection() {
  const readme = await readFile(join(REPO_DIR, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Embedding in Electron\n');
  assert.ok(start >= 0, 'README.md has an "Embedding in Electron" section');
  const next = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, next < 0 ? undefined : next);
}

test('every snippet of "Embedding in Electron" is taken verbatim from a file the suite runs', async () => {
  const section = await embeddingSection();
  const snippets = [...section.matchAll(/<!-- snippet: clients\/node\/(\S+) -->\n```\w*\n([\s\S]*?)\n```/g)];
  assert.ok(snippets.length >= 5, `found ${snippets.length} snippets`);
  const shown = new Set();
  for (const [, file, body] of snippets) {
    const text = await readFile(join(PACKAGE_DIR, file), 'utf8');
    assert.ok(text.includes(body), `the README's snippet of ${file} is not in that file (run the example's tests, then copy it again)`);
    shown.add(file);
  }
  for (const file of ['main.mjs', 'renderer.js', 'index.html', 'electron-builder.json']) {
    assert.ok(shown.has(`examples/electron/${file}`), `examples/electron/${file} is shown`);
  }
  // Every code line of main.mjs is shown (the snippets add up to the whole file, comments at the top aside).
  const main = await readFile(join(PACKAGE_DIR, 'examples', 'electron', 'main.mjs'), 'utf8');
  const mainShown = snippets.filter(([, file]) => file === 'examples/electron/main.mjs').map(([, , body]) => body).join('\n');
  for (const line of main.split('\n').filter((l) => l.trim() && !l.startsWith('//'))) {
    assert.ok(mainShown.includes(line), `main.mjs line not in the README: ${line}`);
  }
  // No code block of the section is left unmarked, except shell commands.
  const opening = [];
  let inside = false;
  for (const m of section.matchAll(/^(<!-- snippet: [^\n]+ -->\n)?```(\w*)$/gm)) {
    if (!inside) opening.push({ marked: Boolean(m[1]), lang: m[2] });
    inside = !inside;
  }
  for (const block of opening) assert.ok(block.marked || block.lang === 'sh', `an unmarked ${block.lang || 'plain'} block`);
});
