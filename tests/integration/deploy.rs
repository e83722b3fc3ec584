//! deploy/ as a cluster takes it. Every Kubernetes object there validates strictly against the
//! schema of a current Kubernetes (kubernetes-validate, which scripts/setup installs), and every
//! other YAML file there is an adrt config that parses. `kubectl kustomize deploy/kubernetes`
//! renders the objects the DaemonSet refers to. And the DaemonSet it renders runs: its init
//! containers, then the agent, each started as a container runtime would — from the image
//! deploy/Dockerfile describes, as the user and with the capabilities the pod asks for, with its
//! environment and its volumes at their paths under a read-only root — in a network namespace of
//! its own (the pod's), beside a kubelet on the node's read-only port. The test emulates the
//! kubelet, not the agent: the only setting it changes is the Datadog intake (a closed loopback
//! port instead of Datadog's). Root, as the other namespace tests: mount and network namespaces.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use adrt_testkit::local_kubelet::{LocalKubelet, fixture_routes};
use adrt_testkit::netns::in_loopback_only_namespace;

use crate::util::{checks_dir, closed_port, scratch_dir, test_checks_dir};

/// The Kubernetes release the manifests are validated against: the newest whose schemas
/// kubernetes-validate 1.37.0 (scripts/setup) carries.
const KUBERNETES_VERSION: &str = "1.37";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

/// The documents of a YAML stream, empty ones left out.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("YAML that parses"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The agent container's memory limit in deploy/kubernetes/daemonset.yaml, in bytes: what the
/// agent must stay under whatever pods do.
pub(crate) fn agent_memory_limit() -> u64 {
    let text = std::fs::read_to_string(repo().join("deploy/kubernetes/daemonset.yaml")).unwrap();
    let ds = documents(&text).into_iter().find(|d| d["kind"] == "DaemonSet").expect("a DaemonSet");
    let limit = ds["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"].as_str().unwrap();
    let mib: u64 = limit.strip_suffix("Mi").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("a limit in Mi: {limit}"));
    mib << 20
}

fn is_object(doc: &Value) -> bool {
    doc["apiVersion"].is_string() && doc["kind"].is_string()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `kubectl kustomize deploy/kubernetes`.
fn render() -> Vec<Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(repo().join("deploy/kubernetes"))
        .output()
        .expect("running kubectl (scripts/setup installs it)");
    assert!(out.status.success(), "kubectl kustomize deploy/kubernetes failed: {}", String::from_utf8_lossy(&out.stderr));
    documents(&String::from_utf8(out.stdout).unwrap())
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn daemonset(objects: &[Value]) -> &Value {
    objects.iter().find(|o| o["kind"] == "DaemonSet").expect("a DaemonSet")
}

/// kubernetes-validate on `files`: whether it passed, and what it printed.
fn kubernetes_validate(files: &[PathBuf], strict: bool) -> (bool, String) {
    let mut command = Command::new("/usr/bin/python3");
    command.args(["-m", "kubernetes_validate", "--kubernetes-version", KUBERNETES_VERSION]);
    if strict {
        command.arg("--strict");
    }
    let out = command.args(files).env("PYTHONPATH", repo().join("target/test-python")).output().expect("running python3");
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!printed.contains("No module named kubernetes_validate"), "scripts/setup installs kubernetes-validate: {printed}");
    (out.status.success(), printed)
}

fn write_yaml(path: &Path, docs: &[Value]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text: Vec<String> = docs.iter().map(|d| serde_yaml::to_string(d).unwrap()).collect();
    std::fs::write(path, text.join("---\n")).unwrap();
}

#[test]
fn every_yaml_file_under_deploy_validates() {
    let repo = repo();
    let scratch = scratch_dir("deploy-validate");
    let (mut manifests, mut objects, mut kustomizations, mut confds) = (Vec::new(), 0, Vec::new(), Vec::new());
    for path in yaml_files(&repo.join("deploy")) {
        let rel = path.strip_prefix(&repo).unwrap().to_path_buf();
        let docs = documents(&std::fs::read_to_string(&path).unwrap());
        if !docs.is_empty() && docs.iter().all(is_object) {
            if docs[0]["kind"] == "Kustomization" {
                kustomizations.push(rel);
                continue;
            }
            // kubernetes-validate names each object by its metadata.name, which a list has not:
            // a PodList goes as its pods, one by one, as kubectl applies a list.
            if docs.iter().any(|d| d["items"].is_array()) {
                let items: Vec<Value> = docs.iter().flat_map(|list| list_items(list)).collect();
                objects += items.len();
                let expanded = scratch.join(&rel);
                write_yaml(&expanded, &items);
                manifests.push(expanded);
            } else {
                objects += docs.len();
                manifests.push(path);
            }
        } else if path.parent().is_some_and(|dir| dir.ends_with("conf.d")) {
            confds.push(path.parent().unwrap().to_path_buf());
        } else if path.file_name().is_some_and(|name| name == "adrt.yaml") {
            // The agent's settings: the keys it knows (an unknown one is an error), values it takes.
            let layer = adrt::config::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", rel.display()));
            adrt::config::Config::resolve(layer, true, || None).unwrap_or_else(|e| panic!("{}: {e}", rel.display()));
        } else {
            panic!("{}: neither Kubernetes objects nor an adrt config (settings or conf.d)", rel.display());
        }
    }
    confds.dedup();
    for dir in &confds {
        let (configs, problems) = adrt::confd::load_dir(dir);
        assert!(problems.is_empty() && !configs.is_empty(), "{}: {problems:?}", dir.display());
    }
    assert_eq!(kustomizations, [PathBuf::from("deploy/kubernetes/kustomization.yaml")]);
    let rendered = render();
    objects += rendered.len();
    let rendering = scratch.join("kubectl-kustomize-deploy-kubernetes.yaml");
    write_yaml(&rendering, &rendered);
    manifests.push(rendering);
    assert!(manifests.iter().any(|m| m.ends_with("deploy/examples/nginx.yaml")), "{manifests:?}");

    let (passed, printed) = kubernetes_validate(&manifests, true);
    assert!(passed, "{printed}");
    // No object skipped: a kind without a schema is a warning, not a failure.
    assert!(!printed.contains("WARN") && !printed.contains("ERROR"), "{printed}");
    assert_eq!(printed.matches(" passed for resource ").count(), objects, "{printed}");
    let _ = std::fs::remove_dir_all(scratch);
}

/// A list's items as objects of their own (a PodList's are Pods).
fn list_items(list: &Value) -> Vec<Value> {
    let kind = list["kind"].as_str().unwrap().strip_suffix("List").expect("a list kind");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let mut item = item.clone();
            item.as_object_mut().unwrap().entry("apiVersion").or_insert(list["apiVersion"].clone());
            item.as_object_mut().unwrap().entry("kind").or_insert(json!(kind));
            item
        })
        .collect()
}

#[test]
fn a_field_the_schema_does_not_know_fails_the_validation() {
    let scratch = scratch_dir("deploy-refused");
    let objects = render();
    let good = scratch.join("daemonset.yaml");
    write_yaml(&good, &[daemonset(&objects).clone()]);
    let (passed, printed) = kubernetes_validate(&[good.clone()], true);
    assert!(passed, "{printed}");

    // The classic misspelling of hostPID: the API server would drop it, and origin detection
    // would quietly find no pod.
    let mut typo = daemonset(&objects).clone();
    typo["spec"]["template"]["spec"]["hostPid"] = json!(true);
    let bad = scratch.join("daemonset-typo.yaml");
    write_yaml(&bad, &[typo]);
    let (passed, printed) = kubernetes_validate(&[bad.clone()], true);
    assert!(!passed, "{printed}");
    assert!(printed.contains("ERROR") && printed.contains("'hostPid' was unexpected"), "{printed}");
    // Which only --strict sees: hence the flag.
    let (passed, printed) = kubernetes_validate(&[bad], false);
    assert!(passed, "{printed}");
    let _ = std::fs::remove_dir_all(scratch);
}

#[test]
fn the_kustomization_renders_what_the_daemonset_refers_to() {
    let objects = render();
    let mut kinds: Vec<&str> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    kinds.sort();
    let expected =
        ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "ConfigMap", "DaemonSet", "Namespace", "PriorityClass", "ServiceAccount"];
    assert_eq!(kinds, expected);

    let ds = daemonset(&objects);
    let namespace = ds["metadata"]["namespace"].as_str().unwrap();
    assert!(find(&objects, "Namespace", namespace).is_some());
    for object in objects.iter().filter(|o| !matches!(o["kind"].as_str(), Some("Namespace" | "ClusterRole" | "ClusterRoleBinding" | "PriorityClass"))) {
        assert_eq!(object["metadata"]["namespace"], namespace, "{object}");
    }
    let pod = &ds["spec"]["template"]["spec"];
    let account = pod["serviceAccountName"].as_str().unwrap();
    assert!(find(&objects, "ServiceAccount", account).is_some());
    let binding = objects.iter().find(|o| o["kind"] == "ClusterRoleBinding").unwrap();
    assert!(find(&objects, "ClusterRole", binding["roleRef"]["name"].as_str().unwrap()).is_some());
    assert_eq!(binding["subjects"], json!([{"kind": "ServiceAccount", "name": account, "namespace": namespace}]));
    assert!(find(&objects, "PriorityClass", pod["priorityClassName"].as_str().unwrap()).is_some());

    // Each ConfigMap a volume needs is rendered, named with the hash of its content, and holds
    // the files of config/ as they are.
    let config_files: BTreeMap<String, String> = yaml_files(&repo().join("deploy/kubernetes/config"))
        .into_iter()
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(path).unwrap()))
        .collect();
    let mut shipped = BTreeMap::new();
    for volume in pod["volumes"].as_array().unwrap().iter().filter(|v| v["configMap"].is_object()) {
        let name = volume["configMap"]["name"].as_str().unwrap();
        match find(&objects, "ConfigMap", name) {
            Some(map) => {
                for (key, value) in map["data"].as_object().unwrap() {
                    shipped.insert(key.clone(), value.as_str().unwrap().to_string());
                }
            }
            None => assert_eq!(volume["configMap"]["optional"], true, "ConfigMap {name} is neither rendered nor optional"),
        }
    }
    assert_eq!(shipped, config_files);
    assert!(objects.iter().filter(|o| o["kind"] == "ConfigMap").all(|m| m["metadata"]["name"].as_str().unwrap().len() > "adrt-config-".len()));

    // What issue 13 asks of a node agent's DaemonSet.
    assert_eq!(ds["spec"]["updateStrategy"]["type"], "RollingUpdate");
    assert!(!ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"].is_null());
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let agent = &pod["containers"][0];
    assert!(!agent["resources"]["requests"]["memory"].is_null() && !agent["resources"]["limits"]["memory"].is_null());
}

/// The image deploy/Dockerfile builds, as files of this build: its final stage's `COPY
/// --from=build /src/<path> <dest>` (the build stage's /src is this repository, and its target/
/// the cargo target directory), `ENV` and `ENTRYPOINT`, over the base image's PATH.
struct Image {
    /// (here, in the image)
    files: Vec<(PathBuf, String)>,
    env: Vec<(String, String)>,
    entrypoint: Vec<String>,
}

fn image() -> Image {
    let repo = repo();
    let dockerfile = std::fs::read_to_string(repo.join("deploy/Dockerfile")).unwrap();
    let (_, last_stage) = dockerfile.rsplit_once("\nFROM ").expect("a multi-stage Dockerfile");
    // target/release/adrt
    let target = Path::new(env!("CARGO_BIN_EXE_adrt")).parent().unwrap().parent().unwrap();
    let mut image = Image {
        files: Vec::new(),
        env: vec![("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into())],
        entrypoint: Vec::new(),
    };
    for line in last_stage.lines() {
        if let Some(copy) = line.strip_prefix("COPY ") {
            let copy = copy.strip_prefix("--from=build ").unwrap_or_else(|| panic!("COPY {copy}: this test knows the build stage's files only"));
            let (from, to) = copy.split_once(' ').unwrap();
            let from = from.strip_prefix("/src/").unwrap().trim_end_matches('/');
            let here = match from.strip_prefix("target/") {
                Some(built) => target.join(built),
                None => repo.join(from),
            };
            image.files.push((here, to.trim_end_matches('/').to_string()));
        } else if let Some(env) = line.strip_prefix("ENV ") {
            let (name, value) = env.split_once('=').unwrap();
            image.env.push((name.into(), value.into()));
        } else if let Some(entrypoint) = line.strip_prefix("ENTRYPOINT ") {
            image.entrypoint = serde_json::from_str(entrypoint).unwrap();
        }
    }
    // The checks the image ships are those of this build.
    assert!(image.files.iter().any(|(here, _)| *here == checks_dir()), "{:?}", image.files);
    image
}

/// A configMap, secret or projected volume as the kubelet writes it: the files in a timestamped
/// directory, `..data` linking to it, and each key a link through `..data` (an update swaps
/// `..data`), readable by all (defaultMode 0644).
fn write_projected(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    let stamped = dir.join("..2026_12_02_18_00_00.000000001");
    std::fs::create_dir_all(&stamped).unwrap();
    for (key, bytes) in files {
        std::fs::write(stamped.join(key), bytes).unwrap();
        std::fs::set_permissions(stamped.join(key), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(format!("..data/{key}"), dir.join(key)).unwrap();
    }
    std::os::unix::fs::symlink("..2026_12_02_18_00_00.000000001", dir.join("..data")).unwrap();
}

/// The content of a ConfigMap or Secret object.
fn object_files(object: &Value) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    let text = if object["kind"] == "Secret" { None } else { object["data"].as_object() };
    for (key, value) in text.into_iter().flatten() {
        files.insert(key.clone(), value.as_str().unwrap().as_bytes().to_vec());
    }
    let encoded = if object["kind"] == "Secret" { object["data"].as_object() } else { object["binaryData"].as_object() };
    for (key, value) in encoded.into_iter().flatten() {
        files.insert(key.clone(), b64.decode(value.as_str().unwrap()).unwrap());
    }
    files
}

/// The node: where the kubelet put a pod's volumes, and the objects of its namespace.
struct Node {
    dir: PathBuf,
    objects: Vec<Value>,
    namespace: String,
}

impl Node {
    /// The node's directory holding `volume` (host paths under /proc and /sys are the node's
    /// own, read as they are; other host paths are made in the test's directory).
    fn volume(&self, volume: &Value) -> PathBuf {
        let dir = self.dir.join("volumes").join(volume["name"].as_str().unwrap());
        let object = |kind: &str, name: &Value| {
            self.objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == *name && o["metadata"]["namespace"] == self.namespace.as_str())
        };
        if let Some(source) = volume["configMap"].as_object().or(volume["secret"].as_object()) {
            let (kind, name) = match source.get("name") {
                Some(name) => ("ConfigMap", name),
                None => ("Secret", &source["secretName"]),
            };
            std::fs::create_dir_all(&dir).unwrap();
            match object(kind, name) {
                Some(object) => write_projected(&dir, &object_files(object)),
                None => assert_eq!(source.get("optional"), Some(&json!(true)), "{kind} {name} does not exist"),
            }
            dir
        } else if volume["emptyDir"].is_object() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            dir
        } else if let Some(path) = volume["hostPath"]["path"].as_str() {
            if path == "/proc" || path == "/sys" || path == "/" {
                return PathBuf::from(path);
            }
            assert_eq!(volume["hostPath"]["type"], "DirectoryOrCreate", "{volume}");
            // As the kubelet creates it: root's, 0755.
            let dir = self.dir.join("host").join(path.trim_start_matches('/'));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            dir
        } else {
            panic!("a volume this test does not lay out: {volume}");
        }
    }
}

/// The values the downward API gives this pod.
fn field(path: &str) -> &'static str {
    match path {
        "status.hostIP" => "127.0.0.1",
        "spec.nodeName" => "node-1",
        other => panic!("a fieldRef this test does not fill: {other}"),
    }
}

/// One container of the pod, ready to start as a runtime would start it.
struct Container {
    /// `unshare` runs the script in a mount namespace of its own, which makes the container's
    /// root (a tmpfs with the node's /usr, the image's files and the volumes), then chroots
    /// into it as the container's user with its capabilities.
    command: Command,
    root: PathBuf,
    env: Vec<(String, String)>,
    /// The `setpriv` arguments that become the container's user and capabilities.
    identity: Vec<String>,
}

impl Container {
    fn new(pod: &Value, container: &Value, image: &Image, volumes: &BTreeMap<String, PathBuf>, node: &Node) -> Container {
        let name = container["name"].as_str().unwrap();
        let root = node.dir.join("roots").join(name);
        std::fs::create_dir_all(&root).unwrap();
        let security = |key: &str| {
            let own = &container["securityContext"][key];
            if own.is_null() { pod["securityContext"][key].clone() } else { own.clone() }
        };
        let uid = security("runAsUser").as_u64().unwrap_or(0);
        let gid = security("runAsGroup").as_u64().unwrap_or(0);
        assert!(!(security("runAsNonRoot") == true && uid == 0), "{name}: the kubelet refuses to start root with runAsNonRoot");
        let capabilities = &container["securityContext"]["capabilities"];
        assert_eq!(capabilities["drop"], json!(["ALL"]), "{name}: this test starts containers that drop every capability");
        let mut bounding = "-all".to_string();
        for cap in capabilities["add"].as_array().into_iter().flatten() {
            bounding.push_str(&format!(",+{}", cap.as_str().unwrap().to_lowercase()));
        }
        let mut identity = vec![format!("--reuid={uid}"), format!("--regid={gid}"), "--clear-groups".into(), "--inh-caps=-all".into()];
        identity.push(format!("--bounding-set={bounding}"));
        if container["securityContext"]["allowPrivilegeEscalation"] == false {
            identity.push("--no-new-privs".into());
        }

        // The root: the image's base system is the node's own Debian /usr, read-only, with a
        // /usr/local of the image's own (the agent goes there); /proc is the node's pids (the pod
        // has hostPID); the CA certificates a TLS intake needs. Then the image's files and the
        // volumes at their paths. Seccomp is not emulated.
        assert_eq!(pod["hostPID"], true, "{name}: this test's containers see the node's pids");
        let mut script = String::from(
            "set -e\nroot=\"$1\"; shift\nmount -t tmpfs -o mode=0755 tmpfs \"$root\"\ncd \"$root\"\n\
             mkdir -p usr dev proc etc/ssl\n\
             for dir in bin sbin lib lib64; do if [ -L /$dir ]; then ln -s \"$(readlink /$dir)\" $dir; fi; done\n\
             mount --rbind /usr usr; mount -o remount,bind,ro usr; mount -t tmpfs tmpfs usr/local\n\
             mount --rbind /dev dev\n\
             mount -t proc proc proc\n\
             mount --bind /etc/ssl etc/ssl; mount -o remount,bind,ro etc/ssl\n",
        );
        let mut bind = |here: &Path, there: &str, read_only: bool| {
            if here.is_dir() {
                script.push_str(&format!("mkdir -p \"$root{there}\"\n"));
            } else {
                let parent = Path::new(there).parent().unwrap().display();
                script.push_str(&format!("mkdir -p \"$root{parent}\"; touch \"$root{there}\"\n"));
            }
            // The node's `/` comes with the filesystems mounted under it, as a container
            // runtime binds a hostPath (recursively).
            let flag = if here == Path::new("/") { "--rbind" } else { "--bind" };
            script.push_str(&format!("mount {flag} \"{}\" \"$root{there}\"\n", here.display()));
            if read_only {
                script.push_str(&format!("mount -o remount,bind,ro \"$root{there}\"\n"));
            }
        };
        for (here, there) in &image.files {
            bind(here, there, true);
        }
        for mount in container["volumeMounts"].as_array().unwrap() {
            let volume = &volumes[mount["name"].as_str().unwrap()];
            bind(volume, mount["mountPath"].as_str().unwrap(), mount["readOnly"] == true);
        }
        // The service-account token the kubelet mounts in every container (its presence tells
        // the agent it runs in a cluster).
        bind(&volumes["kube-api-access"], "/var/run/secrets/kubernetes.io/serviceaccount", true);
        if container["securityContext"]["readOnlyRootFilesystem"] == true {
            script.push_str("mount -o remount,ro \"$root\"\n");
        }
        script.push_str("exec chroot \"$root\" /usr/bin/setpriv \"$@\"\n");

        let mut env = image.env.clone();
        for var in container["env"].as_array().into_iter().flatten() {
            let value = match var["value"].as_str() {
                Some(value) => value,
                None => field(var["valueFrom"]["fieldRef"]["fieldPath"].as_str().expect("a value or a fieldRef")),
            };
            env.push((var["name"].as_str().unwrap().into(), value.into()));
        }
        let mut command = Command::new("unshare");
        command.args(["--mount", "--propagation", "private", "--", "sh", "-c", &script, "sh"]).arg(&root);
        command.args(&identity).arg("--");
        // Kubernetes' rule: `command` replaces the entrypoint (and then the image's CMD goes too).
        match container["command"].as_array() {
            Some(command_line) => command.args(command_line.iter().map(|a| a.as_str().unwrap())),
            None => command.args(&image.entrypoint),
        };
        command.args(container["args"].as_array().into_iter().flatten().map(|a| a.as_str().unwrap()));
        command.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        Container { command, root, env, identity }
    }

    fn run_to_completion(mut self, log: &Path) {
        let out = self.command.output().expect("running unshare");
        std::fs::write(log, [&out.stdout[..], &out.stderr[..]].concat()).unwrap();
        assert!(out.status.success(), "{}: {}", self.root.display(), String::from_utf8_lossy(&out.stderr));
    }
}

/// `kubectl exec` into the running container `pid`: its mount namespace and root, its user,
/// capabilities and environment.
fn exec(pid: u32, container: &Container, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .args(["--target", &pid.to_string(), "--mount", "--root", "--wd", "--", "/usr/bin/setpriv"])
        .args(&container.identity)
        .arg("--")
        .args(args)
        .env_clear()
        .envs(container.env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("running nsenter")
}

/// Stops the agent and so its mount namespace, whatever the test's outcome.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn http_get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// The container port named `name`.
fn port(container: &Value, name: &str) -> u64 {
    let ports = container["ports"].as_array().unwrap();
    ports.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no port {name}"))["containerPort"].as_u64().unwrap()
}

#[test]
fn the_rendered_daemonset_runs_as_its_manifest_says() {
    in_loopback_only_namespace(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run_the_daemonset());
    });
}

async fn run_the_daemonset() {
    let mut objects = render();
    let ds = daemonset(&objects).clone();
    let namespace = ds["metadata"]["namespace"].as_str().unwrap().to_string();
    let pod = &ds["spec"]["template"]["spec"];
    let agent = &pod["containers"][0];
    let image = image();

    // What the operator creates beside the kustomization: the API key's Secret, and a custom
    // check in `adrt-checks`, as `kubectl create configmap --from-file` would store a component.
    let b64 = base64::engine::general_purpose::STANDARD;
    let custom = std::fs::read(test_checks_dir().join("versioned-1.wasm")).unwrap();
    objects.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "adrt-datadog", "namespace": namespace},
        "data": {"api-key": b64.encode("0123456789abcdef0123456789abcdef")}}));
    objects.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "adrt-checks", "namespace": namespace},
        "binaryData": {"versioned.wasm": b64.encode(&custom)}}));
    let node = Node { dir: scratch_dir("deploy-node"), objects, namespace };
    let mut volumes: BTreeMap<String, PathBuf> =
        pod["volumes"].as_array().unwrap().iter().map(|v| (v["name"].as_str().unwrap().to_string(), node.volume(v))).collect();
    let token = node.dir.join("volumes/kube-api-access");
    std::fs::create_dir_all(&token).unwrap();
    let files = [("token", b"a service-account token".to_vec()), ("namespace", node.namespace.clone().into_bytes())];
    write_projected(&token, &files.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
    volumes.insert("kube-api-access".into(), token);

    // The node's kubelet on its read-only port, where the agent looks when the secure one
    // (10250) does not answer: the pod's KUBERNETES_KUBELET_HOST is status.hostIP.
    let _kubelet = LocalKubelet::serve_on(format!("{}:10255", field("status.hostIP")).parse().unwrap(), fixture_routes()).unwrap();

    for init in pod["initContainers"].as_array().unwrap() {
        let name = init["name"].as_str().unwrap();
        Container::new(pod, init, &image, &volumes, &node).run_to_completion(&node.dir.join(format!("{name}.log")));
    }
    // The hostPath directories are the agent's user's now, and checks.d holds the shipped checks
    // and the custom one.
    let user = pod["securityContext"]["runAsUser"].as_u64().unwrap() as u32;
    for name in ["spool", "dsdsocket"] {
        assert_eq!(std::fs::metadata(&volumes[name]).unwrap().uid(), user, "{name}");
    }
    let listed = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    let mut expected = listed(&checks_dir());
    expected.push("versioned.wasm".into());
    expected.sort();
    assert_eq!(listed(&volumes["checks"]), expected);

    // The agent, with one setting of the test's: the intake is a closed port here, not Datadog's.
    let mut container = Container::new(pod, agent, &image, &volumes, &node);
    let intake = format!("http://127.0.0.1:{}", closed_port());
    container.command.env("DD_DD_URL", &intake);
    container.env.push(("DD_DD_URL".into(), intake));
    let log = node.dir.join("adrt.log");
    container.command.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
    let mut running = Running(container.command.spawn().expect("starting unshare"));
    let pid = running.0.id();
    let agent_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // The kubelet's probes, on the ports the manifest names.
    let probe = |kind: &str| {
        let get = &agent[kind]["httpGet"];
        format!("http://127.0.0.1:{}{}", port(agent, get["port"].as_str().unwrap()), get["path"].as_str().unwrap())
    };
    let info_json = || {
        let out = exec(pid, &container, &["adrt", "info", "--json"]);
        out.status.success().then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let node_checks_ok = |info: &Value| {
        ["network", "kubernetes", "cpu", "memory", "load", "disk", "io", "uptime"].iter().all(|name| {
            info["checks"].as_array().unwrap().iter().any(|c| {
                c["name"] == *name && c["instances"].as_array().unwrap().iter().any(|i| i["status"] == "OK" && i["metrics"].as_u64() > Some(0))
            })
        })
    };
    let info = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            panic!("the agent exited ({status}):\n{}", agent_log());
        }
        assert!(Instant::now() < deadline, "the agent did not get ready with its node checks OK\n{:#?}\n{}", info_json(), agent_log());
        if http_get(&probe("readinessProbe")).await.map(|(status, _)| status) == Some(200)
            && let Some(info) = info_json()
            && node_checks_ok(&info)
        {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(http_get(&probe("livenessProbe")).await.map(|(status, _)| status), Some(200));
    // The node checks ran as a non-root user: they read the node's /proc and /sys through the
    // hostPath mounts, from the checks.d the init container filled.
    let network = info["checks"].as_array().unwrap().iter().find(|c| c["name"] == "network").unwrap();
    assert_eq!(network["path"], "/etc/adrt/checks.d/network.wasm");
    assert_eq!(info["hostname"], field("spec.nodeName"), "series are the node's");
    assert!(info["forwarder"].is_object(), "the API key of the Secret is read: {info:#}");
    let spool = volumes["spool"].join("datadog");
    assert_eq!(std::fs::metadata(&spool).map(|m| m.uid()).ok(), Some(user), "the spool, made by the agent in the hostPath");

    // DogStatsD: a pod's client on the socket of the hostPath (made by the non-root agent, open
    // to every user), and the node's UDP port.
    let socket = volumes["dsdsocket"].join("dsd.socket");
    let meta = std::fs::metadata(&socket).expect("the DogStatsD socket");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (user, 0o722));
    std::os::unix::net::UnixDatagram::unbound().unwrap().send_to(b"deploy.socket:1|c", &socket).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"deploy.udp:1|c", format!("127.0.0.1:{}", port(agent, "dogstatsd"))).unwrap();
    loop {
        let info = info_json().unwrap();
        let dogstatsd = &info["dogstatsd"];
        assert_eq!(dogstatsd["errors"], json!([]), "{dogstatsd:#}");
        if dogstatsd["uds_packets"] == 1 && dogstatsd["udp_packets"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "DogStatsD did not count both packets: {dogstatsd:#}\n{}", agent_log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // `kubectl exec ds/adrt -- adrt check`: the same settings (ADRT_CONFIG), the custom check.
    let out = exec(pid, &container, &["adrt", "check", "versioned", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&report["check"], &report["version"]), (&json!("versioned"), &json!("1.0.0")));
    // Prometheus finds /metrics where the pod's annotations say, with the node checks' series
    // once the first flush (flush_interval) has passed.
    let annotations = &ds["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    let scrape = annotations["prometheus.io/port"].as_str().unwrap();
    assert_eq!(scrape, port(agent, "metrics").to_string());
    let metrics = format!("http://127.0.0.1:{scrape}{}", annotations["prometheus.io/path"].as_str().unwrap());
    loop {
        let (status, body) = http_get(&metrics).await.expect("/metrics answers");
        assert_eq!(status, 200);
        if body.contains("system_net_bytes_rcvd{") {
            break;
        }
        assert!(Instant::now() < deadline, "no network series in /metrics:\n{body}\n{}", agent_log());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Its memory at its most so far, compiling the checks included, within the container's limit.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kib: u64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches(" kB").parse().unwrap();
    assert!(peak_kib << 10 < agent_memory_limit(), "peak RSS {peak_kib} KiB");
    drop(running);
    let _ = std::fs::remove_dir_all(&node.dir);
}
