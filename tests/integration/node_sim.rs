//! The seed's scenario on a simulated node (`adrt_testkit::node_sim`): each replica of the seed's
//! nginx Deployment is a network namespace with its own 198.18.x.y address and a real nginx on
//! port 80; a kubelet serves their PodList; the real `adrt run`, in the root namespace, reaches
//! them through their pod IPs — what the agent does on a node, minus the container runtime.
//!
//! Needs root and `ip netns`; elsewhere each test says it is skipped, and fails when `CI` is set.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use adrt_testkit::node_sim::{NodeSim, PodTemplate, SimPod};
use serde_json::{Value, json};

use crate::agent::{RunningAgent, all_ok_with_seven_metrics, nginx_instances, pods_of};

/// `adrt run` on the node's kubelet, polled every 0.2 s, checks every second.
fn agent_on(sim: &NodeSim) -> RunningAgent {
    RunningAgent::start(&["--listener", "kubelet", "--kubelet-url", &sim.kubelet_url(), "--kubelet-poll", "0.2"])
}

/// Each nginx instance's ID → the URL its config resolved to, and the pod it came from
/// (`adrt configcheck --json`).
async fn urls_by_instance(agent: &RunningAgent) -> BTreeMap<String, (String, String)> {
    let configs = agent.configcheck().await;
    configs["resolved"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["check"] == "nginx")
        .map(|r| {
            let url = r["instance"]["nginx_status_url"].as_str().unwrap().to_string();
            (r["id"].as_str().unwrap().to_string(), (r["source"]["pod"].as_str().unwrap().to_string(), url))
        })
        .collect()
}

/// Every nginx instance in `info` runs against its own pod's IP on port 80: the pods of `sim`, one
/// instance each.
async fn assert_each_instance_on_its_own_pod_ip(agent: &RunningAgent, info: &Value, sim: &NodeSim) {
    let urls = urls_by_instance(agent).await;
    let mut seen = Vec::new();
    for instance in nginx_instances(info) {
        let id = instance["id"].as_str().unwrap();
        let (pod, url) = urls.get(id).unwrap_or_else(|| panic!("instance {id} is not in configcheck: {urls:?}"));
        assert_eq!(instance["source"]["pod"], json!(pod), "{instance}");
        assert_eq!(url, &sim.pod(pod).url("/nginx_status"), "instance {id} of {pod}");
        seen.push(url.clone());
    }
    let mut expected: Vec<String> = sim.pods().iter().map(|p| p.url("/nginx_status")).collect();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected, "one instance per pod, on the pod's own address");
}

/// Waits until the pod's own nginx has logged `runs` requests for `/nginx_status` from the node
/// (the agent's source address on the bridge), answered 200. nginx logs a request after it has
/// sent the answer, so the last run the agent counted may be logged a moment later.
async fn wait_for_requests_served(pod: &SimPod, sim: &NodeSim, runs: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = pod.access_log();
        let from_agent = log.iter().filter(|l| l.client == sim.gateway.to_string() && l.request == "GET /nginx_status HTTP/1.1");
        if from_agent.clone().count() >= runs {
            assert!(from_agent.clone().all(|l| l.status == 200), "{log:?}");
            return;
        }
        assert!(Instant::now() < deadline, "{}'s nginx ({}) logged fewer than {runs} status requests from {}: {log:?}", pod.name, pod.ip, sim.gateway);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn runs_of(info: &Value, pod: &str) -> usize {
    let instance = nginx_instances(info).into_iter().find(|i| i["source"]["pod"] == pod).unwrap_or_else(|| panic!("no instance of {pod}"));
    instance["total_runs"].as_u64().unwrap() as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_deployment_on_pods_of_their_own_is_checked_through_each_pod_ip() {
    let Some(mut sim) = NodeSim::start_or_skip("node_sim::the_seed_deployment_on_pods_of_their_own_is_checked_through_each_pod_ip").await
    else {
        return;
    };
    let seed = PodTemplate::seed_nginx();
    for name in ["sada4j-nginx-5d9c7b8f6d-4xk2p", "sada4j-nginx-5d9c7b8f6d-q7wzm"] {
        sim.add_pod(name, &seed).unwrap();
    }
    let agent = agent_on(&sim);

    let info = agent.wait_for("both replicas [OK] with 7 metrics and 1 service check", |i| all_ok_with_seven_metrics(i, 2)).await;
    assert_eq!(pods_of(&info), ["sada4j-nginx-5d9c7b8f6d-4xk2p", "sada4j-nginx-5d9c7b8f6d-q7wzm"]);
    let text = agent.info_text().await;
    for n in 0..2 {
        assert!(text.contains(&format!("      - instance #{n} [OK]\n      - Collected 7 metrics, 0 events & 1 service check\n")), "{text}");
    }
    for pod in sim.pods() {
        assert!(text.contains(&format!("pod sada4j/{}, container frontend", pod.name)), "{text}");
    }
    assert_each_instance_on_its_own_pod_ip(&agent, &info, &sim).await;

    // Each pod's own nginx, on port 80 of its own namespace, served its instance's runs: as many
    // requests for the status page from the node's address as the agent counts runs (7 metrics
    // take two runs: the rates need a second sample).
    for pod in sim.pods() {
        let runs = runs_of(&info, &pod.name);
        assert!(runs >= 2, "{runs} runs of {}", pod.name);
        wait_for_requests_served(pod, &sim, runs).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_deployment_scales_out_and_in_on_the_node() {
    let Some(mut sim) = NodeSim::start_or_skip("node_sim::the_seed_deployment_scales_out_and_in_on_the_node").await else {
        return;
    };
    let seed = PodTemplate::seed_nginx();
    for name in ["sada4j-nginx-1", "sada4j-nginx-2"] {
        sim.add_pod(name, &seed).unwrap();
    }
    let agent = agent_on(&sim);
    let before = agent.wait_for("both replicas [OK]", |i| all_ok_with_seven_metrics(i, 2)).await;
    let id_of = |info: &Value, pod: &str| nginx_instances(info).into_iter().find(|i| i["source"]["pod"] == pod).map(|i| i["id"].clone());

    // Scale out: a third replica on its own address, port 80 again.
    sim.add_pod("sada4j-nginx-3", &seed).unwrap();
    let info = agent.wait_for("a third instance [OK] after scale-out", |i| all_ok_with_seven_metrics(i, 3)).await;
    assert_eq!(pods_of(&info), ["sada4j-nginx-1", "sada4j-nginx-2", "sada4j-nginx-3"]);
    assert_each_instance_on_its_own_pod_ip(&agent, &info, &sim).await;
    for pod in ["sada4j-nginx-1", "sada4j-nginx-2"] {
        assert_eq!(id_of(&info, pod), id_of(&before, pod), "scaling out keeps the other instances");
    }
    wait_for_requests_served(sim.pod("sada4j-nginx-3"), &sim, runs_of(&info, "sada4j-nginx-3")).await;

    // Scale in: the pod goes from the PodList and its namespace is deleted; its instance goes,
    // the others keep running.
    let gone = sim.pod("sada4j-nginx-1").netns.clone();
    sim.remove_pod("sada4j-nginx-1");
    let runs_before: Vec<usize> = ["sada4j-nginx-2", "sada4j-nginx-3"].iter().map(|p| runs_of(&info, p)).collect();
    let info = agent
        .wait_for("the removed pod's instance goes, the others run on", |i| {
            pods_of(i) == ["sada4j-nginx-2", "sada4j-nginx-3"]
                && all_ok_with_seven_metrics(i, 2)
                && runs_before.iter().zip(["sada4j-nginx-2", "sada4j-nginx-3"]).all(|(&before, pod)| runs_of(i, pod) > before)
        })
        .await;
    assert_each_instance_on_its_own_pod_ip(&agent, &info, &sim).await;
    let configs = agent.configcheck().await.to_string();
    assert!(!configs.contains("sada4j-nginx-1\""), "the removed pod's config is gone: {configs}");
    assert!(!ip(&["netns", "list"]).unwrap().contains(&gone), "{gone} was deleted");
}

/// The simulation itself: pods are separate hosts on port 80 that can reach their node and each
/// other but nothing off it, the kubelet serves them in the kubelet's wire format, and nothing is
/// left behind — neither by a dropped node nor by a run that died without tidying up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_hosts_of_their_own_that_reach_nothing_off_the_node_and_leave_nothing_behind() {
    let test = "node_sim::pods_are_hosts_of_their_own_that_reach_nothing_off_the_node_and_leave_nothing_behind";
    // What a run killed by SIGKILL leaves: a namespace of this naming scheme with a process still
    // in it, and a bridge, both named after a pid that cannot be running (above pid_max). The
    // process enters a namespace of its own first and the name is given to that namespace
    // after, so a node another test starts meanwhile finds either nothing or both.
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max").map_or(4_194_304, |t| t.trim().parse().unwrap());
    let dead = pid_max + 1;
    let (dead_netns, dead_bridge) = (format!("adrt-sim-{dead}-0-0"), format!("asim{dead}b0"));
    // (Those of an earlier run of this test that failed before its node cleaned them up first.)
    let _ = (ip(&["netns", "del", &dead_netns]), ip(&["link", "del", &dead_bridge]));
    let orphan = leftover_namespace(&dead_netns);
    let made_bridge = ip(&["link", "add", &dead_bridge, "type", "bridge"]).is_ok();

    let Some(mut sim) = NodeSim::start_or_skip(test).await else { return };
    let mut orphan = orphan.expect("a machine that runs the node simulation can make namespaces");
    assert!(made_bridge, "a machine that runs the node simulation can make bridges");
    assert!(!ip(&["netns", "list"]).unwrap().contains(&dead_netns), "the dead run's namespace is cleaned up");
    assert!(ip(&["link", "show", &dead_bridge]).is_err(), "the dead run's bridge is cleaned up");
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(orphan.0.wait().unwrap().signal(), Some(libc::SIGKILL), "what ran in the dead run's namespace is killed");

    let seed = PodTemplate::seed_nginx();
    let (a, b) = (sim.add_pod("pod-a", &seed).unwrap().ip, sim.add_pod("pod-b", &seed).unwrap().ip);
    assert_ne!(a, b);
    let (range, len) = adrt_testkit::node_sim::SIM_RANGE;
    for ip in [a, b, sim.gateway] {
        assert_eq!(u32::from(ip) >> (32 - len), u32::from(range) >> (32 - len), "{ip} is in {range}/{len}");
    }

    // Two nginx on port 80, each answering on its own pod IP only for itself.
    for pod in sim.pods() {
        let body = reqwest::get(pod.url("/")).await.unwrap().text().await.unwrap();
        assert_eq!(body, format!("{}\n", pod.name));
        let status = reqwest::get(pod.url("/nginx_status")).await.unwrap().text().await.unwrap();
        assert!(status.starts_with("Active connections: "), "{status}");
    }

    // Inside a pod: its /24 on eth0 and nothing else — no default route, so nothing it sends
    // leaves the node, whatever the root namespace forwards. The node and the other pod are
    // reachable, as in a cluster.
    let pod_a = sim.pod("pod-a");
    let routes = String::from_utf8(pod_a.exec(&["ip", "-4", "route", "show"]).stdout).unwrap();
    let subnet = format!("{}/24", std::net::Ipv4Addr::from(u32::from(a) & 0xffff_ff00));
    assert_eq!(routes.lines().map(str::trim).collect::<Vec<_>>(), [format!("{subnet} dev eth0 proto kernel scope link src {a}")], "{routes}");
    for outside in ["1.1.1.1", "192.0.2.1", "10.0.0.1"] {
        let out = pod_a.exec(&["ip", "route", "get", outside]);
        let via = String::from_utf8_lossy(&out.stdout);
        let reachable = out.status.success() && !via.contains(" dev lo ");
        assert!(!reachable, "{outside} must be unreachable from a pod: {via}{}", String::from_utf8_lossy(&out.stderr));
    }
    let to_b = pod_a.exec(&["ip", "route", "get", &b.to_string()]);
    assert!(String::from_utf8_lossy(&to_b.stdout).contains(" dev eth0 "), "pods reach each other on the bridge");
    let listening = String::from_utf8(pod_a.exec(&["ss", "-Hltn"]).stdout).unwrap();
    assert_eq!(listening.lines().count(), 1, "only nginx listens in the pod: {listening}");
    assert!(listening.contains("0.0.0.0:80 "), "{listening}");

    // The kubelet's /pods: the kubelet's wire format, each pod's real IP, Running and Ready.
    let list = reqwest::get(format!("{}/pods", sim.kubelet_url())).await.unwrap().text().await.unwrap();
    let list: Value = serde_json::from_str(&list).expect("the kubelet answers JSON");
    assert_eq!((&list["kind"], &list["apiVersion"]), (&json!("PodList"), &json!("v1")));
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for (item, ip) in items.iter().zip([a, b]) {
        assert_eq!(item["status"]["podIP"], json!(ip.to_string()));
        assert_eq!(item["status"]["podIPs"], json!([{"ip": ip.to_string()}]));
        assert_eq!(item["status"]["hostIP"], json!(sim.gateway.to_string()));
        assert_eq!(item["status"]["phase"], "Running");
        let ready = item["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(ready["status"], "True");
        let container = &item["status"]["containerStatuses"][0];
        assert_eq!((&container["name"], &container["ready"]), (&json!("frontend"), &json!(true)));
        assert!(container["containerID"].as_str().unwrap().starts_with("containerd://"), "{container}");
        assert_eq!(item["spec"]["containers"][0]["ports"], json!([{"containerPort": 80, "protocol": "TCP"}]));
        assert_eq!(item["metadata"]["annotations"]["service-discovery.datadoghq.com/frontend.check_names"], r#"["nginx"]"#);
    }

    // Dropped: the pods' nginx stop, their namespaces, veths and the bridge are gone.
    let names: Vec<String> = sim.pods().iter().flat_map(|p| [p.netns.clone(), p.veth.clone()]).chain([sim.bridge.clone()]).collect();
    drop(sim);
    let namespaces = ip(&["netns", "list"]).unwrap();
    let links = ip(&["-o", "link", "show"]).unwrap();
    for name in &names {
        assert!(!namespaces.contains(name.as_str()) && !links.contains(&format!(": {name}")), "{name} is left: {namespaces}{links}");
    }
    let routes = ip(&["-4", "route", "show", "table", "all"]).unwrap();
    assert!(!routes.contains(&format!("{subnet} ")), "the node's route is gone: {routes}");
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("ip").args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() { Ok(String::from_utf8_lossy(&out.stdout).into_owned()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// A process in a network namespace of its own, named `name` (`ip netns attach`); None where
/// namespaces cannot be made.
fn leftover_namespace(name: &str) -> Option<Orphan> {
    let quiet = std::process::Stdio::null;
    let command = std::process::Command::new("unshare").args(["-n", "sleep", "1000"]).stdout(quiet()).stderr(quiet()).spawn();
    let mut child = Orphan(command.ok()?);
    let ours = std::fs::read_link("/proc/self/ns/net").ok()?;
    let theirs = format!("/proc/{}/ns/net", child.0.id());
    // `unshare` enters the new namespace, then becomes `sleep`.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_link(&theirs).is_ok_and(|ns| ns == ours) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Never name this process's own namespace: cleaning it up would kill everything in it.
    let entered = std::fs::read_link(&theirs).is_ok_and(|ns| ns != ours);
    if !entered || child.0.try_wait().ok().flatten().is_some() || ip(&["netns", "attach", name, &child.0.id().to_string()]).is_err() {
        return None;
    }
    Some(child)
}

/// A process the test started; killed when dropped, also when the test fails before the node
/// simulation's clean-up has.
struct Orphan(std::process::Child);

impl Drop for Orphan {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Datadog's `prometheus_scrape` autoconfig on a pod that carries nothing but
/// `prometheus.io/scrape: "true"` and `prometheus.io/port`: the pod runs nginx and, beside it in
/// its namespace, the real `prometheus-nginx-exporter` (Debian) reading nginx's stub_status. The
/// agent, started with `--prometheus-scrape` (off by default, as Datadog's), gives the container declaring the port an
/// `openmetrics` instance and scrapes the exporter through the pod IP; the exporter reads nginx
/// for each scrape, which nginx's log shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_with_only_prometheus_annotations_is_scraped_through_its_pod_ip() {
    let Some(mut sim) = NodeSim::start_or_skip("node_sim::a_pod_with_only_prometheus_annotations_is_scraped_through_its_pod_ip").await
    else {
        return;
    };
    let pairs = |list: &[(&str, &str)]| list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let template = PodTemplate {
        namespace: "shop".into(),
        deployment: "web".into(),
        container: "web".into(),
        image: "nginx:alpine".into(),
        labels: pairs(&[("app", "web")]),
        annotations: pairs(&[("prometheus.io/scrape", "true"), ("prometheus.io/port", "9113")]),
        ports: vec![80, 9113],
        sidecar: ["prometheus-nginx-exporter", "-nginx.scrape-uri=http://{ip}:80/nginx_status", "-web.listen-address={ip}:9113"]
            .map(String::from)
            .to_vec(),
    };
    let pod = sim.add_pod("web-1", &template).unwrap();
    let (pod_ip, endpoint) = (pod.ip.to_string(), format!("http://{}:9113/metrics", pod.ip));

    let agent = RunningAgent::start(&[
        "--listener", "kubelet", "--kubelet-url", &sim.kubelet_url(), "--kubelet-poll", "0.2", "--prometheus-scrape",
    ]);
    let scraped = |info: &Value| -> Vec<Value> {
        let checks = info["checks"].as_array().unwrap().iter().filter(|c| c["name"] == "openmetrics");
        checks.flat_map(|c| c["instances"].as_array().unwrap().clone()).collect()
    };
    let info = agent
        .wait_for("the exporter scraped twice, OK", |info| {
            scraped(info).iter().any(|i| i["status"] == "OK" && i["total_runs"].as_u64().is_some_and(|runs| runs >= 2))
        })
        .await;
    let instances = scraped(&info);
    assert_eq!(instances.len(), 1, "one container declares the port: {instances:#?}");
    assert_eq!(instances[0]["source"]["pod"], "web-1");
    // nginx_up, nginx_connections_{active,reading,writing,waiting}: gauges from the first run.
    assert!(instances[0]["metrics"].as_u64().unwrap() >= 5, "{:#}", instances[0]);

    let configs = agent.configcheck().await;
    let resolved: Vec<&Value> = configs["resolved"].as_array().unwrap().iter().collect();
    assert_eq!(resolved.len(), 1, "{configs:#}");
    assert_eq!((resolved[0]["check"].as_str(), resolved[0]["provider"].as_str()), (Some("openmetrics"), Some("prometheus_pods")));
    assert_eq!(resolved[0]["source"]["container"], "web");
    assert_eq!(resolved[0]["instance"], json!({"openmetrics_endpoint": endpoint, "metrics": [".*"], "namespace": ""}));
    let text = agent.info_text().await;
    assert!(text.contains("openmetrics") && text.contains("web-1"), "adrt info shows the instance:\n{text}");

    // Each scrape made the exporter read nginx from inside the pod.
    let runs = instances[0]["total_runs"].as_u64().unwrap() as usize;
    let from_exporter =
        sim.pod("web-1").access_log().into_iter().filter(|l| l.client == pod_ip && l.request == "GET /nginx_status HTTP/1.1").count();
    assert!(from_exporter >= runs, "nginx served the exporter {from_exporter} times for {runs} scrapes");
}
