#!/usr/bin/python3
"""The LAVA side of `make test-lava` (scripts/test-lava.sh), run with Debian's python3 (LAVA's
modules live in /usr/lib/python3/dist-packages).

  validate DEFINITION JOB...        LAVA's own schema code (lava_common.schemas) on the test
                                    definition and on rendered jobs, strict
  render-device DICT TEMPLATES JOB  the device dictionary rendered with lava-server's
                                    device-type templates and the job's context, as
                                    lava-server does before it hands a job to a worker
  render-job TEMPLATE OUT KEY=VALUE...  the job template with its @KEY@ placeholders filled
  check LOG --suite NAME --expect FILE [--fail CASE]... [--pass CASE]...
                                    read the result lines of a `lava-run` log and require
                                    every expected case of each suite, see `check()`

lava-run exits 0 whatever the tests found: its results are only the `results` lines of its
log (one YAML mapping per line), so CI must read them itself.
"""

import argparse
import pathlib
import re
import sys

import yaml


class ResultError(Exception):
    """The results of a run do not show what was required (the message says what)."""


def read_results(lines):
    """The `results` entries of a lava-run log, as dicts. Every line must be a YAML mapping
    with `lvl`; a line that is not is an error naming its number (a truncated or corrupted
    log must not pass for a short one)."""
    results = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            entry = yaml.safe_load(line)
        except yaml.YAMLError as e:
            raise ResultError("log line %d is not YAML: %s" % (n, str(e).splitlines()[0]))
        if not isinstance(entry, dict) or "lvl" not in entry:
            raise ResultError("log line %d is not a lava-run log entry: %.80s" % (n, line))
        if entry["lvl"] != "results":
            continue
        msg = entry.get("msg")
        if not isinstance(msg, dict) or not isinstance(msg.get("case"), str) or "result" not in msg:
            raise ResultError("log line %d: a result without case or result: %.120s" % (n, line))
        results.append(msg)
    return results


def suite_cases(results, suite):
    """{case: result entry} of one test suite (LAVA names them INDEX_NAME: 0_nicqual-vfio).
    A case reported twice is an error: a LAVA suite keeps one result per case name."""
    cases = {}
    for r in results:
        d = str(r.get("definition", ""))
        if d == suite or d.split("_", 1)[-1] == suite:
            if r["case"] in cases:
                raise ResultError("suite %s: case %s reported twice" % (suite, r["case"]))
            cases[r["case"]] = r
    return cases


def check(results, suite, expected, must_fail=(), must_pass=()):
    """Require, of suite `suite`:
    - every name in `expected` reported, with result pass, fail or skip, and no other case
      than those, their measurement cases (NAME.MEASUREMENT) and the definition's own
      (nicqual-*);
    - every case in `must_fail` failed and every case in `must_pass` passed;
    - with no `must_fail`: no case failed (a healthy run);
    - LAVA's own `job` result in the `lava` suite is pass (the job ran to its end).
    Returns a one-line summary."""
    if not expected:
        raise ResultError("suite %s: the list of expected cases is empty" % suite)
    job = [r for r in results if r.get("definition") == "lava" and r["case"] == "job"]
    if not job:
        raise ResultError("no `job` result from LAVA: the job did not finish")
    if job[-1]["result"] != "pass":
        raise ResultError("LAVA's job result is %s: %s" % (job[-1]["result"], job[-1].get("error_msg", "")))
    cases = suite_cases(results, suite)
    if not cases:
        raise ResultError("suite %s: no results at all" % suite)
    missing = [n for n in expected if n not in cases]
    if missing:
        raise ResultError("suite %s: %d expected case(s) not reported: %s" % (suite, len(missing), " ".join(missing)))
    known = set(expected)
    for name, r in cases.items():
        base = name.rsplit(".", 1)[0] if "." in name else name
        if name not in known and base not in known and not name.startswith("nicqual-"):
            raise ResultError("suite %s: unexpected case %s (%s)" % (suite, name, r["result"]))
        if r["result"] not in ("pass", "fail", "skip"):
            raise ResultError("suite %s: case %s has result %r" % (suite, name, r["result"]))
    for name in must_fail:
        got = cases.get(name, {}).get("result")
        if got != "fail":
            raise ResultError("suite %s: case %s must fail, got %s" % (suite, name, got))
    for name in must_pass:
        got = cases.get(name, {}).get("result")
        if got != "pass":
            raise ResultError("suite %s: case %s must pass, got %s" % (suite, name, got))
    failed = sorted(n for n, r in cases.items() if r["result"] == "fail")
    if not must_fail and failed:
        raise ResultError("suite %s: %d case(s) failed: %s" % (suite, len(failed), " ".join(failed)))
    count = {k: sum(1 for n in expected if cases[n]["result"] == k) for k in ("pass", "fail", "skip")}
    measured = sum(1 for r in cases.values() if "measurement" in r)
    return "suite %s: %d checks reported (%d pass, %d fail, %d skip), %d measurements%s" % (
        suite,
        len(expected),
        count["pass"],
        count["fail"],
        count["skip"],
        measured,
        "; failing: " + " ".join(failed) if failed else "",
    )


def validate(definition, jobs):
    import voluptuous
    from lava_common.schemas import validate as validate_job
    from lava_common.schemas.test import testdef

    with open(definition) as f:
        testdef.validate(yaml.safe_load(f))
    print("lava-ci: %s: valid LAVA test definition (lava_common.schemas.test.testdef)" % definition)
    for job in jobs:
        with open(job) as f:
            data = yaml.safe_load(f)
        try:
            validate_job(data, strict=True)
        except voluptuous.Invalid as e:
            raise ResultError("%s: invalid LAVA job at %s: %s" % (job, e.path, e.msg))
        print("lava-ci: %s: valid LAVA job (lava_common.schemas, strict)" % job)


def render_device(device_dict, templates, job):
    import jinja2
    import jinja2.sandbox

    with open(job) as f:
        context = yaml.safe_load(f).get("context", {})
    path = pathlib.Path(device_dict)
    dirs = [str(path.parent), templates]
    env = jinja2.sandbox.SandboxedEnvironment(autoescape=False, loader=jinja2.FileSystemLoader(dirs))
    return env.get_template(path.name).render(**context)


def render_job(template, values):
    with open(template) as f:
        text = f.read()
    for key, value in values.items():
        text = text.replace("@%s@" % key, value)
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise ResultError("%s: placeholders left unfilled: %s" % (template, " ".join(left)))
    return text


def main(argv):
    p = argparse.ArgumentParser(prog="lava_ci.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("validate")
    v.add_argument("definition")
    v.add_argument("jobs", nargs="*")
    d = sub.add_parser("render-device")
    d.add_argument("device_dict")
    d.add_argument("templates")
    d.add_argument("job")
    j = sub.add_parser("render-job")
    j.add_argument("template")
    j.add_argument("out")
    j.add_argument("values", nargs="*")
    c = sub.add_parser("check")
    c.add_argument("log")
    c.add_argument("--suite", required=True)
    c.add_argument("--expect", required=True, help="file with one expected case name a line")
    c.add_argument("--fail", action="append", default=[])
    c.add_argument("--pass", dest="must_pass", action="append", default=[])
    a = p.parse_args(argv)
    try:
        if a.cmd == "validate":
            validate(a.definition, a.jobs)
        elif a.cmd == "render-device":
            sys.stdout.write(render_device(a.device_dict, a.templates, a.job))
        elif a.cmd == "render-job":
            values = dict(kv.split("=", 1) for kv in a.values)
            text = render_job(a.template, values)
            with open(a.out, "w") as f:
                f.write(text)
        else:
            with open(a.expect) as f:
                expected = [l.strip() for l in f if l.strip()]
            with open(a.log, errors="replace") as f:
                results = read_results(f)
            print("lava-ci: " + check(results, a.suite, expected, a.fail, a.must_pass))
    except (ResultError, OSError) as e:
        print("lava-ci: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
