#!/usr/bin/env node
// Groups the failed pjdfstest checks of a mount by cause, from the report the
// POSIX suite writes (STOWAGE_PJDFSTEST_REPORT=FILE.json node scripts/run-tests.mjs posix-suite),
// and prints Markdown: a count per directory and cause, then per cause the
// test files and check numbers with what was expected and what came back.
// docs/posix.md is written from its output.
//   node scripts/pjdfstest-causes.mjs /tmp/pjdfstest.json
//
// Each failed check gets the first cause that matches, in this order (later
// failures of a file often follow from an earlier one: an object that could
// not be created is then missing for every later check):
//   nonroot    a check run as another user (-u/-g) got EACCES
//   special    mknod / mkfifo / bind (unix socket) refused with EPERM
//   hardlink   link refused with EPERM
//   owner      a stat of uid/gid reads back other ids (chown/chgrp not kept)
//   nlink      a stat of nlink reads back another link count
//   nametoolong  ENAMETOOLONG expected, ENOENT returned (lookup of a name over 255 bytes)
//   times      a stat of atime/mtime/ctime(_ns) reads back another time, or a
//              bare "not ok N" (pjdfstest's test_check: the ctime/mtime/atime comparisons)
//   dead       the test file died (all its planned checks count as failed)
//   follow-on  anything else: mostly ENOENT/EEXIST/wrong inode for objects an
//              earlier failed check of the same file did not create, remove or rename
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2] ?? '/dev/stdin', 'utf8'));
const CAUSES = ['nonroot', 'special', 'hardlink', 'owner', 'nlink', 'nametoolong', 'times', 'dead', 'follow-on'];

/** { user, call, args } of a tried command line ("-u 65534 -g 65534 chmod x 0644"). */
function parseTried(tried) {
  const w = tried.split(/\s+/);
  let i = 0;
  let user = false;
  for (;;) {
    if (['-u', '-g'].includes(w[i])) user = true;
    if (['-u', '-g', '-U'].includes(w[i])) i += 2;
    else if (w[i] === '--') i += 1;
    else break;
  }
  return { user, call: w[i] ?? '', args: w.slice(i + 1) };
}

function classify(line) {
  const m = /^not ok \d+(?: - tried '(.*)', expected (.*), got (.*))?$/.exec(line);
  if (!m || m[1] === undefined) return 'times';
  const [, tried, expected, got] = m;
  const { user, call, args } = parseTried(tried);
  if (user && got === 'EACCES') return 'nonroot';
  if (['mknod', 'mkfifo', 'bind'].includes(call) && got === 'EPERM') return 'special';
  if (call === 'link' && got === 'EPERM') return 'hardlink';
  if (expected === 'ENAMETOOLONG' && got === 'ENOENT') return 'nametoolong';
  if (['stat', 'lstat', 'fstat'].includes(call) && got !== 'ENOENT' && !/^E[A-Z]+$/.test(got)) {
    const fields = (args[1] ?? '').split(',');
    const exp = expected.split(',');
    const act = got.split(',');
    const differs = (name) => {
      const i = fields.indexOf(name);
      return i >= 0 && exp[i] !== undefined && act[i] !== undefined && !new RegExp(`^(${exp[i]})$`).test(act[i]);
    };
    if (differs('uid') || differs('gid')) return 'owner';
    if (differs('nlink')) return 'nlink';
    if (['atime', 'mtime', 'ctime', 'atime_ns', 'mtime_ns', 'ctime_ns'].some(differs)) return 'times';
  }
  return 'follow-on';
}

/** "3-5, 9, 12-14" from sorted numbers. */
function ranges(ns) {
  const out = [];
  for (let i = 0; i < ns.length; ) {
    let j = i;
    while (j + 1 < ns.length && ns[j + 1] === ns[j] + 1) j++;
    out.push(i === j ? `${ns[i]}` : `${ns[i]}-${ns[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}

const counts = new Map(); // dir -> cause -> n
const byCause = new Map(); // cause -> file -> [{n, line}]
for (const d of report.mount) {
  const c = new Map(CAUSES.map((k) => [k, 0]));
  counts.set(d.dir, c);
  for (const f of d.files) {
    const add = (cause, n, line) => {
      c.set(cause, c.get(cause) + 1);
      if (!byCause.has(cause)) byCause.set(cause, new Map());
      const files = byCause.get(cause);
      if (!files.has(f.file)) files.set(f.file, []);
      files.get(f.file).push({ n, line });
    };
    if (f.died !== undefined) {
      for (let n = 1; n <= f.planned; n++) add('dead', n, `${f.file}: ${f.died}`);
      continue;
    }
    for (const x of f.failures) add(classify(x.line), x.n, x.line);
  }
}

const out = [];
out.push(`| directory | failed | ${CAUSES.join(' | ')} |`);
out.push(`| --- | ---: | ${CAUSES.map(() => '---:').join(' | ')} |`);
const total = new Map(CAUSES.map((k) => [k, 0]));
for (const [dir, c] of counts) {
  const failed = [...c.values()].reduce((a, b) => a + b, 0);
  if (failed === 0) continue;
  for (const k of CAUSES) total.set(k, total.get(k) + c.get(k));
  out.push(`| ${dir} | ${failed} | ${CAUSES.map((k) => c.get(k) || '').join(' | ')} |`);
}
out.push(
  `| **total** | ${[...total.values()].reduce((a, b) => a + b, 0)} | ${CAUSES.map((k) => total.get(k)).join(' | ')} |`,
);
out.push('');
for (const cause of CAUSES) {
  const files = byCause.get(cause);
  if (!files) continue;
  out.push(`### ${cause} (${[...files.values()].reduce((a, l) => a + l.length, 0)} checks)`);
  out.push('');
  for (const [file, list] of files) {
    // One example per distinct (call, expected, got), the numbers of every check.
    const shapes = new Map();
    for (const { line } of list) {
      const m = /tried '(.*)', expected (.*), got (.*)$/.exec(line);
      const t = m ? parseTried(m[1]) : undefined;
      const key =
        m && t
          ? `${t.user ? 'as another user: ' : ''}${t.call}${t.call.endsWith('stat') ? ` ${t.args[1]}` : ''}: expected ${m[2]}, got ${m[3]}`.replace(
              /\d{3,}/g,
              'N',
            )
          : line.startsWith(file)
            ? line.slice(file.length + 2)
            : 'comparison failed (test_check)';
      shapes.set(key, (shapes.get(key) ?? 0) + 1);
    }
    const shown = [...shapes.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([k, n]) => `${k}${n > 1 ? ` (x${n})` : ''}`);
    let checks = ranges(list.map((x) => x.n).sort((a, b) => a - b));
    // The longest lists (chown/00.t, rename/09.t) are cut: the report JSON has every number.
    if (checks.length > 240) checks = `${checks.slice(0, checks.lastIndexOf(',', 240))} ... (${list.length} in all)`;
    out.push(
      `- ${file} checks ${checks}: ${shown.join('; ')}${shapes.size > 3 ? `; ${shapes.size - 3} more kinds` : ''}`,
    );
  }
  out.push('');
}
console.log(out.join('\n'));
