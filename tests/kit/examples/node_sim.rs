//! `scripts/node-sim`: a simulated node for a human — the seed's nginx Deployment as pods that are
//! network namespaces with their own 198.18.x.y address and a real nginx on port 80, and a
//! kubelet serving them (the same `adrt_testkit::node_sim` the end-to-end tests use). It prints
//! how to point `adrt run` at it, then takes commands on stdin to scale the Deployment.
//!
//! Usage: node_sim [REPLICAS]   (default 2; needs root)

use std::io::BufRead as _;

use adrt_testkit::node_sim::{NodeSim, PodTemplate, Unavailable};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let replicas: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 2,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("usage: node_sim [REPLICAS]");
            return std::process::ExitCode::from(2);
        }
    };
    let mut sim = match NodeSim::start().await {
        Ok(sim) => sim,
        Err(e) => {
            let hint = if e.is::<Unavailable>() { " (run it as root on Linux, with iproute2)" } else { "" };
            eprintln!("node-sim: {e:#}{hint}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let seed = PodTemplate::seed_nginx();
    let mut made = 0;
    let mut add = |sim: &mut NodeSim| {
        made += 1;
        let name = format!("sada4j-nginx-5d9c7b8f6d-{made}");
        match sim.add_pod(&name, &seed) {
            Ok(pod) => println!("  + pod {}/{}  {}:80  (ip netns exec {} ...)", pod.namespace, pod.name, pod.ip, pod.netns),
            Err(e) => eprintln!("  adding {name}: {e:#}"),
        }
    };
    println!("node {}: bridge {} at {}/24, kubelet {}", sim.name, sim.bridge, sim.gateway, sim.kubelet_url());
    for _ in 0..replicas {
        add(&mut sim);
    }
    println!(
        "\nIn another terminal (from the repository):\n  \
         target/release/adrt run --listener kubelet --kubelet-url {} --kubelet-poll 1\n  \
         target/release/adrt info\n\n\
         Here: `add` starts a replica, `del POD` deletes one, `ls` lists them; Ctrl-D or Ctrl-C stops\n\
         and deletes the namespaces.",
        sim.kubelet_url()
    );

    let (lines, mut commands) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = tokio::select! {
            line = commands.recv() => match line { Some(line) => line, None => break },
            _ = tokio::signal::ctrl_c() => break,
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["add"] => add(&mut sim),
            ["del", pod] if sim.pods().iter().any(|p| p.name == *pod) => {
                sim.remove_pod(pod);
                println!("  - pod {pod}");
            }
            ["ls"] => {
                for pod in sim.pods() {
                    println!("  {}/{}  {}:80  {}", pod.namespace, pod.name, pod.ip, pod.netns);
                }
            }
            [] => {}
            _ => println!("  commands: add | del POD | ls"),
        }
    }
    println!("deleting the node's pods");
    drop(sim);
    std::process::ExitCode::SUCCESS
}
