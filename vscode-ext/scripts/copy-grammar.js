// Copy the TextMate grammar from the repository's syntaxes/ directory into
// the extension (vscode-ext/syntaxes/), so the packaged .vsix contains it.
// Fails with a clear message when the source grammar is missing or invalid.
'use strict';
const fs = require('fs');
const path = require('path');

const src = path.resolve(__dirname, '..', '..', 'syntaxes', 'systemtap.tmLanguage.json');
const dstDir = path.resolve(__dirname, '..', 'syntaxes');
const dst = path.join(dstDir, 'systemtap.tmLanguage.json');

let text;
try {
  text = fs.readFileSync(src, 'utf8');
} catch (err) {
  console.error(`copy-grammar: cannot read ${src}: ${err.message}`);
  process.exit(1);
}
let grammar;
try {
  grammar = JSON.parse(text);
} catch (err) {
  console.error(`copy-grammar: ${src} is not valid JSON: ${err.message}`);
  process.exit(1);
}
if (grammar.scopeName !== 'source.systemtap') {
  console.error(`copy-grammar: ${src} has scopeName ${grammar.scopeName}, expected source.systemtap`);
  process.exit(1);
}
fs.mkdirSync(dstDir, { recursive: true });
fs.writeFileSync(dst, text);
console.log(`copy-grammar: ${path.relative(process.cwd(), dst)}`);
