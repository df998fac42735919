// Checks Chrome trace event files (JSON object format) against the rules of
// the Trace Event Format that Perfetto and chrome://tracing rely on:
// - a top-level object with a `traceEvents` array (displayTimeUnit "ms"/"ns");
// - per phase, the required fields: every event has ph, pid (integer) and
//   name; X has ts and dur (numbers >= 0) and tid; B/E have ts and tid;
//   i/I have ts; M is process_name/process_labels/process_sort_index/
//   thread_name/thread_sort_index with args, *_name with a string args.name;
// - complete events of one (pid, tid) nest: none partially overlaps another;
// - every process with events has a process_name, every thread a thread_name.
//
// Usage: node check_chrometrace.cjs FILE...  Prints "ok FILE ..." per valid
// file; exits 1 if any file breaks a rule. Needs no packages.
"use strict";
const fs = require("fs");

const META = new Set(["process_name", "process_labels", "process_sort_index", "thread_name", "thread_sort_index"]);
const isNum = (v) => typeof v === "number" && Number.isFinite(v);

function check(doc) {
  const problems = [];
  if (typeof doc !== "object" || doc === null || !Array.isArray(doc.traceEvents)) {
    return ["not an object with a traceEvents array"];
  }
  if (doc.displayTimeUnit !== undefined && !["ms", "ns"].includes(doc.displayTimeUnit)) {
    problems.push(`displayTimeUnit ${doc.displayTimeUnit}`);
  }
  const spans = new Map(); // "pid/tid" -> [[ts, end, name]]
  const processNames = new Set();
  const threadNames = new Set();
  doc.traceEvents.forEach((e, i) => {
    const bad = (what) => problems.push(`event ${i} (${JSON.stringify(e).slice(0, 120)}): ${what}`);
    if (typeof e.ph !== "string") return bad("no ph");
    if (!Number.isInteger(e.pid)) bad("pid is not an integer");
    if (typeof e.name !== "string" || e.name === "") bad("no name");
    const needTs = () => isNum(e.ts) && e.ts >= 0 ? true : bad("ts missing or negative");
    const needTid = () => Number.isInteger(e.tid) ? true : bad("tid is not an integer");
    switch (e.ph) {
      case "X":
        needTs();
        needTid();
        if (!isNum(e.dur) || e.dur < 0) bad("dur missing or negative");
        if (e.args !== undefined && (typeof e.args !== "object" || e.args === null)) bad("args not an object");
        if (isNum(e.ts) && isNum(e.dur)) {
          const key = `${e.pid}/${e.tid}`;
          if (!spans.has(key)) spans.set(key, []);
          spans.get(key).push([e.ts, e.ts + e.dur, e.name]);
        }
        break;
      case "B":
      case "E":
        needTs();
        needTid();
        break;
      case "i":
      case "I":
        needTs();
        break;
      case "M":
        if (!META.has(e.name)) return bad(`unknown metadata ${e.name}`);
        if (typeof e.args !== "object" || e.args === null) return bad("metadata without args");
        if (e.name.endsWith("_name")) {
          if (typeof e.args.name !== "string" || e.args.name === "") bad("metadata without args.name");
        }
        if (e.name === "process_name") processNames.add(e.pid);
        if (e.name === "thread_name" && needTid()) threadNames.add(`${e.pid}/${e.tid}`);
        break;
      default:
        bad(`unexpected phase ${e.ph}`);
    }
  });
  for (const [key, list] of spans) {
    // Outer events first: by start, then longest first.
    list.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    const stack = [];
    for (const [ts, end, name] of list) {
      while (stack.length && stack[stack.length - 1][1] <= ts) stack.pop();
      const top = stack[stack.length - 1];
      if (top && end > top[1]) {
        problems.push(`thread ${key}: ${name} [${ts}, ${end}] partially overlaps ${top[2]} [${top[0]}, ${top[1]}]`);
      }
      stack.push([ts, end, name]);
    }
    if (!processNames.has(Number(key.split("/")[0]))) problems.push(`process of ${key} has no process_name`);
    if (!threadNames.has(key)) problems.push(`thread ${key} has no thread_name`);
  }
  return problems;
}

let failed = 0;
for (const name of process.argv.slice(2)) {
  let problems;
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(name, "utf8"));
    problems = check(doc);
  } catch (e) {
    problems = [String(e)];
  }
  if (problems.length === 0) {
    const complete = doc.traceEvents.filter((e) => e.ph === "X").length;
    console.log(`ok ${name}: ${doc.traceEvents.length} events, ${complete} complete`);
  } else {
    failed++;
    console.log(`INVALID ${name}:\n  ${problems.join("\n  ")}`);
  }
}
process.exit(failed ? 1 : 0);
