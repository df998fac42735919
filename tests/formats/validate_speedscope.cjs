// Validates speedscope files: against the JSON schema shipped in the npm
// package `speedscope` (dist/release/file-format-schema.json), with ajv, then
// with the checks speedscope's importer makes when it loads a file (samples
// and weights of equal length, weights >= 0, frame indices in range) and the
// consistency pysampler promises (endValue - startValue = sum of weights).
//
// Usage: NODE_PATH=<dir with ajv and speedscope> node validate_speedscope.cjs FILE...
// Prints "ok FILE ..." per valid file; exits 1 if any file is invalid.
"use strict";
const fs = require("fs");
const path = require("path");
const Ajv = require("ajv");

const schemaPath = path.join(
  path.dirname(require.resolve("speedscope/package.json")),
  "dist/release/file-format-schema.json",
);
const validate = new Ajv({ allErrors: true }).compile(JSON.parse(fs.readFileSync(schemaPath, "utf8")));

function importerChecks(file) {
  const problems = [];
  const nframes = file.shared.frames.length;
  file.shared.frames.forEach((f, i) => {
    if (!f.name) problems.push(`frame ${i} has no name`);
  });
  if (!(file.activeProfileIndex >= 0 && file.activeProfileIndex < file.profiles.length)) {
    problems.push(`activeProfileIndex ${file.activeProfileIndex} out of range`);
  }
  file.profiles.forEach((p, pi) => {
    const where = `profile ${pi} (${p.name})`;
    if (p.type !== "sampled") return;
    if (p.samples.length !== p.weights.length) {
      problems.push(`${where}: samples.length ${p.samples.length} != weights.length ${p.weights.length}`);
    }
    p.weights.forEach((w, i) => {
      if (!Number.isFinite(w) || w < 0) problems.push(`${where}: weight ${i} is ${w}`);
    });
    p.samples.forEach((stack, i) =>
      stack.forEach((f) => {
        if (!Number.isInteger(f) || f < 0 || f >= nframes) problems.push(`${where}: sample ${i} frame ${f}`);
      }),
    );
    const total = p.weights.reduce((a, b) => a + b, 0);
    const span = p.endValue - p.startValue;
    if (Math.abs(span - total) > 1e-9 * Math.max(1, total)) {
      problems.push(`${where}: endValue - startValue = ${span} but weights sum to ${total}`);
    }
  });
  return problems;
}

let failed = 0;
for (const name of process.argv.slice(2)) {
  let problems;
  let file;
  try {
    file = JSON.parse(fs.readFileSync(name, "utf8"));
    problems = validate(file)
      ? importerChecks(file)
      : validate.errors.map((e) => `schema: ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
  } catch (e) {
    problems = [String(e)];
  }
  if (problems.length === 0) {
    const samples = file.profiles.reduce((n, p) => n + (p.samples || []).length, 0);
    console.log(`ok ${name}: ${file.profiles.length} profiles, ${file.shared.frames.length} frames, ${samples} samples`);
  } else {
    failed++;
    console.log(`INVALID ${name}:\n  ${problems.join("\n  ")}`);
  }
}
process.exit(failed ? 1 : 0);
