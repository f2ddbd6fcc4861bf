/**
 * @module common/regex-worker
 * The worker thread that runs user regexes and globs for search and replace. A regex
 * can backtrack for longer than anyone would wait (/(a+)+$/ on "aaaa…!"), and
 * no JavaScript engine can interrupt a running match; so matching happens
 * here, and common/regex-runner terminates this thread when the deadline of
 * the operation passes. The main thread never runs a user regex.
 *
 * Protocol: workerData is the Patterns (regex and/or glob); each message is
 * a job (`search`, `replace` or `glob`) answered by one message with the
 * same id.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { compileGlob, type LineMatch, type Patterns, type RegexJob, type RegexReply } from './regex-runner.js';

/** Characters of a matching line returned at most. */
export const MAX_LINE_CHARS = 500;

const patterns = workerData as Patterns;
// 'g' drives exec loops; the runner has already refused 'g' and 'y' from users.
const re = new RegExp(patterns.regex?.source ?? '(?!)', `${patterns.regex?.flags ?? ''}g`);
const globTest = patterns.glob === undefined ? () => true : compileGlob(patterns.glob);

/** The first match of every matching line, up to `limit`, with 1-based line and column. */
function search(text: string, limit: number): LineMatch[] {
  const out: LineMatch[] = [];
  re.lastIndex = 0;
  let line = 1;
  let counted = 0; // text before this index has had its newlines counted into `line`
  while (out.length < limit) {
    const m = re.exec(text);
    if (!m) break;
    const at = m.index;
    for (let k = text.indexOf('\n', counted); k !== -1 && k < at; k = text.indexOf('\n', k + 1)) line++;
    counted = at;
    const start = text.lastIndexOf('\n', at - 1) + 1;
    let end = text.indexOf('\n', at);
    if (end === -1) end = text.length;
    const whole = text.slice(start, end).replace(/\r$/, '');
    out.push({
      line,
      column: at - start + 1,
      text: whole.length > MAX_LINE_CHARS ? whole.slice(0, MAX_LINE_CHARS) : whole,
    });
    // One match per line, like grep: continue on the next line.
    if (end >= text.length) break;
    re.lastIndex = end + 1;
    counted = end + 1;
    line++;
  }
  return out;
}

/** Every match replaced; `count` says how many. */
function replace(text: string, replacement: string): { text: string; count: number } {
  let count = 0;
  re.lastIndex = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    count++;
    if (m[0] === '') re.lastIndex++;
  }
  if (count === 0) return { text, count };
  re.lastIndex = 0;
  return { text: text.replace(re, replacement), count };
}

parentPort!.on('message', (job: RegexJob) => {
  let reply: RegexReply;
  if (job.kind === 'search') reply = { id: job.id, matches: search(job.text, job.limit) };
  else if (job.kind === 'replace') reply = { id: job.id, ...replace(job.text, job.replacement) };
  else reply = { id: job.id, selected: job.paths.map(globTest) };
  parentPort!.postMessage(reply);
});
