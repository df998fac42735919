// Reads a gzipped pprof with the npm package pprof-format (a decoder written
// independently of pysampler's and of Go's) and prints it as JSON: sample
// types, period, times, and each sample's values, stack (innermost first,
// as function/file/line/column) and labels. Numbers go out as decimal strings
// (times in nanoseconds do not fit a double).
const fs = require("fs");
const zlib = require("zlib");
const { Profile } = require("pprof-format");

const file = process.argv[2];
const p = Profile.decode(zlib.gunzipSync(fs.readFileSync(file)));
const s = (i) => p.stringTable.strings[Number(i)];
const byId = (list) => new Map(list.map((x) => [String(x.id), x]));
const functions = byId(p.function);
const locations = byId(p.location);
const out = {
  sampleTypes: p.sampleType.map((t) => `${s(t.type)}/${s(t.unit)}`),
  periodType: `${s(p.periodType.type)}/${s(p.periodType.unit)}`,
  period: String(p.period),
  timeNanos: String(p.timeNanos),
  durationNanos: String(p.durationNanos),
  samples: p.sample.map((x) => ({
    values: x.value.map(String),
    stack: x.locationId.map((id) => {
      const loc = locations.get(String(id));
      if (!loc) throw new Error(`no location ${id}`);
      const line = loc.line[0];
      const f = functions.get(String(line.functionId));
      if (!f) throw new Error(`no function ${line.functionId}`);
      return {
        name: s(f.name),
        file: s(f.filename),
        line: String(line.line),
        column: String(line.column),
      };
    }),
    labels: Object.fromEntries(
      x.label.map((l) => [s(l.key), Number(l.str) ? s(l.str) : String(l.num)])
    ),
  })),
};
process.stdout.write(JSON.stringify(out));
