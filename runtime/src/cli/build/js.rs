//! `adrt build` for a JavaScript check: componentize-js turns the check's module, adrt's JS SDK
//! and the `adrt:check` world into one component.
//!
//! The SDK (`checks/sdk-js`) and `wit/check.wit` are compiled into the binary and written to a
//! temporary directory for each build, with a copy of the check, so an installed `adrt` builds
//! without the repository. Node is found on `PATH`; componentize-js in `$ADRT_NODE_MODULES`, else
//! in a `NODE_PATH` directory, and must be the pinned version: it embeds the SpiderMonkey engine
//! (StarlingMonkey) built against WASI 0.2, and 0.23.0's imports (`wasi:*@0.2.12`, resolved to
//! wasmtime 48's WASI 0.2 by semver matching; no component-model async ABI, which the agent's
//! engine does not enable) are ones the agent links. componentize-js runs the
//! check's module at build time and snapshots the engine (Wizer), so an instance starts with the
//! engine, the SDK and the check already loaded. The engine is built without `fetch` and without
//! `wasi:http` (`disableFeatures: ['http', 'fetch-event']`): the `http` import, under the agent's
//! policy, is a check's only way out.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The componentize-js version adrt builds with (see the module docs).
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";

/// The SDK's files a component needs, by path under the SDK's directory.
const SDK_FILES: &[(&str, &str)] = &[
    ("index.js", include_str!("../../../../checks/sdk-js/index.js")),
    ("check.js", include_str!("../../../../checks/sdk-js/check.js")),
    ("component.js", include_str!("../../../../checks/sdk-js/component.js")),
    ("host.js", include_str!("../../../../checks/sdk-js/host.js")),
    ("http.js", include_str!("../../../../checks/sdk-js/http.js")),
    ("runner.js", include_str!("../../../../checks/sdk-js/runner.js")),
];

const WORLD: &str = super::embedded::WIT;

/// Calls componentize-js: `node componentize.mjs <componentize.js> <entry> <wit> <out>`.
const DRIVER: &str = r#"import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
const [tool, entry, wit, out] = process.argv.slice(2);
const { componentize } = await import(pathToFileURL(tool).href);
const { component } = await componentize({
  sourcePath: entry,
  witPath: wit,
  worldName: 'check',
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(out, component);
"#;

/// What `adrt new --lang js` writes; `{{name}}` is the check's name. The SDK goes in the check's
/// `node_modules/adrt-check` so that `node --test` finds it; `adrt build` uses its own copy.
pub const NEW_CHECK_FILES: &[(&str, &str)] = &[
    ("check.js", include_str!("js_template/check.js")),
    ("check.test.js", include_str!("js_template/check.test.js")),
    ("package.json", include_str!("js_template/package.json")),
    ("manifest.toml", include_str!("js_template/manifest.toml")),
    ("node_modules/adrt-check/package.json", include_str!("../../../../checks/sdk-js/package.json")),
    ("node_modules/adrt-check/index.js", include_str!("../../../../checks/sdk-js/index.js")),
    ("node_modules/adrt-check/check.js", include_str!("../../../../checks/sdk-js/check.js")),
    ("node_modules/adrt-check/host.js", include_str!("../../../../checks/sdk-js/host.js")),
    ("node_modules/adrt-check/http.js", include_str!("../../../../checks/sdk-js/http.js")),
    ("node_modules/adrt-check/runner.js", include_str!("../../../../checks/sdk-js/runner.js")),
    ("node_modules/adrt-check/testing.js", include_str!("../../../../checks/sdk-js/testing.js")),
];

/// Builds the JavaScript check in `check_dir` (its module `check.js` or `<dirname>.js`) as the
/// component `out_wasm`, reporting itself as `name`.
pub fn build(check_dir: &Path, name: &str, out_wasm: &Path) -> anyhow::Result<()> {
    let module = check_module(check_dir)?;
    let tool = componentize_js()?;
    let work = super::ScratchDir::new("js")?;
    super::write_files(&work.0.join("sdk"), SDK_FILES)?;
    super::write_files(&work.0, &[("check.wit", WORLD), ("componentize.mjs", DRIVER)])?;
    copy_check(check_dir, &work.0.join("check"), 1)?;
    // The component's root module: the world's exports over the check's module.
    let entry = format!(
        "import * as checkModule from './check/{module}';\n\
         import {{ componentExports }} from './sdk/component.js';\n\
         const check = componentExports(checkModule, {name});\n\
         export function info() {{ return check.info(); }}\n\
         export function init(initConfig) {{ return check.init(initConfig); }}\n\
         export function run(instanceId, instance) {{ return check.run(instanceId, instance); }}\n\
         export function validate(initConfig, instance) {{ return check.validate(initConfig, instance); }}\n",
        name = serde_json::to_string(name)?,
    );
    super::write_files(&work.0, &[("main.js", &entry)])?;
    let built = work.0.join("out.wasm");
    // From inside the scratch directory: componentize-js lets the engine read the modules under
    // the working directory only.
    let output = Command::new("node")
        .current_dir(&work.0)
        .arg("componentize.mjs")
        .arg(&tool)
        .arg(work.0.join("main.js"))
        .arg(work.0.join("check.wit"))
        .arg(&built)
        .output()
        .with_context(|| format!("cannot run node to build a JavaScript check: install Node.js 18 or later and {}", install_hint()))?;
    if !output.status.success() {
        bail!(
            "componentize-js could not build {}:\n{}{}",
            check_dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr).replace(&format!("{}/", work.0.display()), "")
        );
    }
    // `adrt build` renames it into place once the manifest is there too.
    std::fs::copy(&built, out_wasm).with_context(|| format!("writing {}", out_wasm.display()))?;
    Ok(())
}

/// The check's module file: `check.js`, else `<dirname>.js`.
fn check_module(check_dir: &Path) -> anyhow::Result<String> {
    let dirname = check_dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    ["check", dirname]
        .into_iter()
        .map(|stem| format!("{stem}.js"))
        .find(|file| file != ".js" && check_dir.join(file).is_file())
        .with_context(|| format!("{} has neither check.js nor {dirname}.js", check_dir.display()))
}

fn install_hint() -> String {
    format!(
        "componentize-js {COMPONENTIZE_JS_VERSION} (`npm install --prefix DIR @bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION}`), \
         then set ADRT_NODE_MODULES=DIR/node_modules or put that directory on NODE_PATH"
    )
}

/// componentize-js's entry module, checked to be the pinned version.
fn componentize_js() -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("ADRT_NODE_MODULES") {
        dirs.push(dir.into());
    }
    if let Some(path) = std::env::var_os("NODE_PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    // In a checkout, where scripts/setup installs it.
    dirs.extend(crate::config::paths::build_tool("tools-node/node_modules"));
    let Some(package) = dirs.iter().map(|dir| dir.join("@bytecodealliance/componentize-js")).find(|p| p.join("package.json").is_file())
    else {
        bail!("componentize-js is needed to build a JavaScript check and was not found in ADRT_NODE_MODULES or NODE_PATH: install {}", install_hint());
    };
    let manifest = package.join("package.json");
    let text = std::fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let version = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_string))
        .unwrap_or_default();
    if version != COMPONENTIZE_JS_VERSION {
        bail!(
            "{} is componentize-js {version:?}, not {COMPONENTIZE_JS_VERSION}, the version whose components the agent's wasmtime \
             runs: install {}",
            package.display(),
            install_hint()
        );
    }
    Ok(package.join("src/componentize.js"))
}

/// Copies the check's files (not `node_modules` nor hidden ones) to `to`, with a module
/// `adrt-check` in each directory re-exporting the SDK: the engine resolves a bare `'adrt-check'`
/// next to the module importing it. `depth` is how far `to` is below the scratch directory.
fn copy_check(from: &Path, to: &Path, depth: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let shim = format!("export * from '{}sdk/index.js';\n", "../".repeat(depth));
    std::fs::write(to.join("adrt-check"), shim).with_context(|| format!("writing {}", to.display()))?;
    let entries = std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let file_name = entry.file_name();
        let name = file_name.to_string_lossy();
        if name.starts_with('.') || name == "node_modules" {
            continue;
        }
        if name == "adrt-check" {
            bail!("{}: `adrt-check` is the SDK's module name; rename this file", entry.path().display());
        }
        let kind = std::fs::metadata(entry.path()).with_context(|| format!("reading {}", entry.path().display()))?;
        if kind.is_dir() {
            copy_check(&entry.path(), &to.join(&file_name), depth + 1)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&file_name)).with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}


