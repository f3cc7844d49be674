//! Sharded reports on real schedulers' terms: the Ray driver (scripts/ray_report.py) on a local
//! Ray instance, the Slurm job-array recipe and the Kubernetes Indexed Job recipe (deploy/),
//! each compared with one process over the same input.
//!
//! Ray (and PyYAML, which comes with it) are found in `$VECSHIFT_PYTHON`, else `python3`.
//! Without them the Ray and Kubernetes tests say so and pass, except in CI (`CI=true`), where
//! .ci/run installs Ray and a missing one is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_same, sentences_input, vecshift};
use serde_json::Value;

/// The Python with Ray and PyYAML, or `None` outside CI when there is none.
fn python_with_ray() -> Option<String> {
    let python = std::env::var("VECSHIFT_PYTHON").unwrap_or_else(|_| "python3".into());
    let found = Command::new(&python).args(["-c", "import ray, yaml"]).output().is_ok_and(|o| o.status.success());
    if found {
        return Some(python);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI=true but {python} cannot import ray and yaml: .ci/run installs them (python3 -m venv, pip install 'ray==2.60.*') and sets VECSHIFT_PYTHON"
    );
    eprintln!("skipped: {python} cannot import ray (pip install 'ray==2.60.*', or set VECSHIFT_PYTHON to a Python that can)");
    None
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_vecshift")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one-process report of `input` (named by the same path the shards see).
fn single(input: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["report", input.to_str().unwrap(), "--json", "--quiet"];
    args.extend_from_slice(extra);
    let out = vecshift(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A stand-in for vecshift that fails for shard `shard` the first `failures` times it is asked
/// to run it (counted with marker folders, which concurrent tasks cannot both create).
fn flaky_binary(dir: &Path, shard: &str, failures: usize) -> PathBuf {
    let path = dir.join("flaky-vecshift");
    let script = format!(
        "#!/bin/sh\ncase \" $* \" in *\" --shard {shard} \"*)\n  for n in $(seq 1 {failures}); do\n    if mkdir \"{marks}/fail-$n\" 2>/dev/null; then echo \"error: injected failure $n\" >&2; exit 3; fi\n  done;;\nesac\nexec \"{binary}\" \"$@\"\n",
        marks = dir.display(),
        binary = binary(),
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

#[test]
fn ray_driver_retries_a_failed_shard_and_matches_one_process() {
    let Some(python) = python_with_ray() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (input, _, _) = sentences_input(dir.path());
    let flaky = flaky_binary(dir.path(), "1/3", 1);
    let output = dir.path().join("ray.json");
    let ray = |binary: &Path, retries: &str, output: &Path| {
        Command::new(&python)
            .arg("scripts/ray_report.py")
            .arg(&input)
            .args(["-o", output.to_str().unwrap(), "--shards", "3", "--num-cpus", "2", "--retries", retries, "--binary"])
            .arg(binary)
            .args(["--", "--max-per-word", "5"])
            .env("RAY_USAGE_STATS_ENABLED", "0")
            .output()
            .unwrap()
    };
    let out = ray(&flaky, "2", &output);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("note: shard 1/3 failed (attempt 1), retrying") && err.contains("injected failure 1"), "{err}");
    assert!(err.contains("3 shard(s) on Ray") && err.contains("(1 retried)"), "{err}");
    assert_same(&single(&input, &["--max-per-word", "5"]), &read_json(&output), "Ray, 3 shards");

    // A shard that keeps failing: the driver gives up with one line and writes nothing.
    let always = flaky_binary(&dir.path().join("always"), "2/3", 10);
    let output = dir.path().join("never.json");
    let out = ray(&always, "1", &output);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("error: shard 2/3 failed 2 time(s), giving up") && err.contains("injected failure 2"), "{err}");
    assert!(!output.exists());
}

#[test]
fn kubernetes_indexed_job_recipe_matches_one_process() {
    let Some(python) = python_with_ray() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (input, _, _) = sentences_input(dir.path());
    let bin_dir = Path::new(binary()).parent().unwrap();
    // Runs each Job's container command as its pods would: every index of the Indexed Job
    // with JOB_COMPLETION_INDEX set, then the merge; the volume's paths point into `dir`.
    let driver = r#"
import os, subprocess, sys, yaml
input_path, parts, output, bin_dir = sys.argv[1:5]
def container(path):
    (job,) = list(yaml.safe_load_all(open(path)))
    spec = job["spec"]
    (c,) = spec["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in c["env"]}
    return spec, c, env
spec, c, env = container("deploy/kubernetes/report-shards.yaml")
assert spec["completionMode"] == "Indexed", spec
assert spec["completions"] == spec["parallelism"] == int(env["SHARDS"]), spec
base = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"])
for index in range(spec["completions"]):
    run_env = {**base, **env, "INPUT": input_path, "PARTS": parts, "JOB_COMPLETION_INDEX": str(index), "RAYON_NUM_THREADS": "1"}
    subprocess.run(c["command"] + c["args"], env=run_env, check=True)
spec, c, env = container("deploy/kubernetes/merge.yaml")
subprocess.run(c["command"] + c["args"], env={**base, **env, "PARTS": parts, "OUTPUT": output}, check=True)
print(len(os.listdir(parts)))
"#;
    let parts = dir.path().join("parts");
    let output = dir.path().join("k8s.json");
    let out = Command::new(&python)
        .args(["-c", driver, input.to_str().unwrap(), parts.to_str().unwrap(), output.to_str().unwrap(), bin_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "8", "one part per index");
    assert_same(&single(&input, &[]), &read_json(&output), "Kubernetes, 8 shards");
}

#[test]
fn slurm_job_array_recipe_matches_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let (input, _, _) = sentences_input(dir.path());
    // A stand-in for sbatch that runs the script at once, each array task in turn, with the
    // variables Slurm sets; array indices from 5 on, to check that they need not start at 0.
    let fake = dir.path().join("bin");
    std::fs::create_dir(&fake).unwrap();
    let sbatch = r#"#!/bin/bash
set -e
array=; script=
for a in "$@"; do case $a in --array=*) array=${a#--array=} ;; --*) ;; *) script=$a ;; esac; done
if [ -n "$array" ]; then
  lo=$((${array%-*} + 5)); hi=$((${array#*-} + 5))
  for ((t = lo; t <= hi; t++)); do
    SLURM_ARRAY_TASK_ID=$t SLURM_ARRAY_TASK_MIN=$lo SLURM_ARRAY_TASK_MAX=$hi SLURM_CPUS_PER_TASK=1 bash "$script" >&2
  done
else
  bash "$script" >&2
fi
echo "$$;cluster"
"#;
    std::fs::write(fake.join("sbatch"), sbatch).unwrap();
    std::fs::set_permissions(fake.join("sbatch"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}:{}", fake.display(), Path::new(binary()).parent().unwrap().display(), std::env::var("PATH").unwrap());
    let output = dir.path().join("slurm.json");
    let out = Command::new("bash")
        .arg("deploy/slurm/submit.sh")
        .args([input.to_str().unwrap(), output.to_str().unwrap(), "3", dir.path().join("parts").to_str().unwrap(), "--", "--max-per-word", "5"])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("array 0-2"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_same(&single(&input, &["--max-per-word", "5"]), &read_json(&output), "Slurm, 3 shards");
}
