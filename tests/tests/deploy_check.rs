//! Static checks of the docker compose demo (which `make test-compose` also runs for real, in
//! tests/compose/run.sh) and of the Istio manifests (which cannot run here), against the real
//! binaries: the compose Envoy configuration is
//! generated from the same template as the local demo's and validated by the real Envoy with
//! the real filter; the manifests' filter configuration is accepted by the filter; the
//! companion accepts the environments they give it; and names and ports agree across files.

use std::process::Command;

use hzcache_e2e::{companion_bin, envoy_bin, filter_wasm, python_bin, root, run_dir};

fn deploy_facts() -> serde_json::Value {
    let out = Command::new(python_bin().unwrap())
        .arg(root().join("tests/python/check_deploy.py"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check_deploy.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `envoy --mode validate` loads the wasm filter and runs its configuration check, so this
/// proves Envoy and the filter both accept the file.
fn envoy_validates(config: &str, name: &str) {
    let path = run_dir().join(name);
    std::fs::write(&path, config).unwrap();
    let out = Command::new(envoy_bin().unwrap())
        .args(["--mode", "validate", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && log.contains("OK"),
        "envoy refused {name}:\n{log}"
    );
}

fn render(profile: &str, wasm: Option<&str>) -> String {
    let mut cmd = Command::new(python_bin().unwrap());
    cmd.arg(root().join("envoy/render.py")).arg(profile);
    if let Some(w) = wasm {
        cmd.arg(w);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn compose_and_mesh_manifests_agree_with_each_other_and_the_demo() {
    let facts = deploy_facts();
    let problems = facts["problems"].as_array().unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn compose_envoy_config_is_the_rendered_shared_template() {
    let checked_in = std::fs::read_to_string(root().join("envoy/compose/envoy.yaml")).unwrap();
    assert_eq!(
        checked_in,
        render("compose", None),
        "envoy/compose/envoy.yaml is stale: run envoy/render.py compose > envoy/compose/envoy.yaml"
    );
}

#[test]
fn compose_and_local_envoy_configs_validate_with_the_real_envoy_and_filter() {
    let wasm = filter_wasm().unwrap().display().to_string();
    let compose = std::fs::read_to_string(root().join("envoy/compose/envoy.yaml"))
        .unwrap()
        .replace("/etc/envoy/wasm/hzcache_filter.wasm", &wasm);
    envoy_validates(&compose, "compose-envoy.yaml");
    envoy_validates(&render("local", Some(&wasm)), "local-envoy.yaml");
}

#[test]
fn the_istio_filter_config_is_accepted_by_the_filter_and_matches_the_demo_rules() {
    let facts = deploy_facts();
    let istio: serde_json::Value =
        serde_json::from_str(facts["istio_filter_config"].as_str().unwrap()).unwrap();
    let demo: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("envoy/filter-config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        istio["rules"], demo["rules"],
        "the mesh and the demo should cache the same way"
    );
    let wasm = filter_wasm().unwrap().display().to_string();
    let config = render("local", Some(&wasm));
    let start = config.find("value: '").unwrap() + "value: '".len();
    let end = start + config[start..].find("'\n").unwrap();
    let with_istio = format!(
        "{}{}{}",
        &config[..start],
        istio.to_string().replace('\'', "''"),
        &config[end..]
    );
    // The Istio cluster name does not exist in this bootstrap; the filter only checks the
    // configuration here, which is what this test is about.
    envoy_validates(&with_istio, "istio-filter-envoy.yaml");
}

#[test]
fn the_companion_accepts_the_compose_and_mesh_environments() {
    let facts = deploy_facts();
    for key in ["companion_env", "istio_companion_env"] {
        let mut cmd = Command::new(companion_bin().unwrap());
        cmd.env_clear().arg("--check-config");
        for (k, v) in facts[key].as_object().unwrap() {
            cmd.env(k, v.as_str().unwrap());
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = String::from_utf8_lossy(&out.stdout);
        let origins = facts[key]["HZCACHE_ORIGINS"].as_str().unwrap();
        assert!(
            summary.contains(&format!("origins={origins}")),
            "{key}: {summary}"
        );
    }
}
