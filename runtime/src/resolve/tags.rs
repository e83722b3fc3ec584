//! The tags Datadog's tagger gives a pod's container: namespace, pod, container, owners, image,
//! container ID and the `ad.datadoghq.com/tags` / `<container>.tags` annotations.

use crate::pod::{Container, Pod};

/// Sorted and deduplicated. `pod_name` keeps two replicas' tag sets apart.
pub fn container_tags(pod: &Pod, container: &Container, annotation_tags: &[String]) -> Vec<String> {
    let mut tags = vec![
        format!("kube_namespace:{}", pod.metadata.namespace),
        format!("pod_name:{}", pod.metadata.name),
        format!("kube_container_name:{}", container.name),
    ];
    for owner in &pod.metadata.owner_references {
        let name = &owner.name;
        match owner.kind.as_str() {
            "ReplicaSet" => {
                tags.push(format!("kube_replica_set:{name}"));
                if let Some(deployment) = deployment_of_replica_set(name) {
                    tags.push(format!("kube_deployment:{deployment}"));
                }
            }
            "Job" => {
                tags.push(format!("kube_job:{name}"));
                if let Some(cronjob) = cronjob_of_job(name) {
                    tags.push(format!("kube_cronjob:{cronjob}"));
                }
            }
            "DaemonSet" => tags.push(format!("kube_daemon_set:{name}")),
            "StatefulSet" => tags.push(format!("kube_stateful_set:{name}")),
            "ReplicationController" => tags.push(format!("kube_replication_controller:{name}")),
            _ => {}
        }
    }
    if !container.image.is_empty() {
        let image = Image::parse(&container.image);
        tags.push(format!("image_name:{}", image.name));
        tags.push(format!("short_image:{}", image.short));
        tags.push(format!("image_tag:{}", image.tag.unwrap_or("latest")));
    }
    let id = pod.container_status(&container.name).and_then(|s| s.container_id.as_deref()).unwrap_or_default();
    let id = id.split_once("://").map_or(id, |(_, id)| id);
    if !id.is_empty() {
        tags.push(format!("container_id:{id}"));
    }
    tags.extend(annotation_tags.iter().cloned());
    tags.sort();
    tags.dedup();
    tags
}

/// A container image reference split as Datadog does.
#[derive(Debug, PartialEq)]
pub struct Image<'a> {
    /// Without tag or digest: `docker.io/library/nginx`.
    pub name: &'a str,
    /// The last path segment of `name`: `nginx`.
    pub short: &'a str,
    pub tag: Option<&'a str>,
}

impl<'a> Image<'a> {
    pub fn parse(image: &'a str) -> Self {
        let without_digest = image.split_once('@').map_or(image, |(name, _)| name);
        // A `:` after the last `/` starts the tag; before it, it is a registry port.
        let slash = without_digest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match without_digest[slash..].rfind(':') {
            Some(i) => (&without_digest[..slash + i], Some(&without_digest[slash + i + 1..])),
            None => (without_digest, None),
        };
        let short = name.rsplit('/').next().unwrap_or(name);
        Image { name, short, tag: tag.filter(|t| !t.is_empty()) }
    }
}

/// `web-5d8f7c9b4d` → `web`: the suffix must look like a pod-template-hash (Kubernetes'
/// safe-encoding alphabet), so a bare ReplicaSet keeps no deployment tag.
fn deployment_of_replica_set(name: &str) -> Option<&str> {
    const ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";
    let (deployment, hash) = name.rsplit_once('-')?;
    (!deployment.is_empty() && !hash.is_empty() && hash.chars().all(|c| ALPHABET.contains(c))).then_some(deployment)
}

/// `backup-28930125` → `backup`: CronJobs name their Jobs `<cronjob>-<scheduled minute>`.
fn cronjob_of_job(name: &str) -> Option<&str> {
    let (cronjob, suffix) = name.rsplit_once('-')?;
    (!cronjob.is_empty() && !suffix.is_empty() && suffix.chars().all(|c| c.is_ascii_digit())).then_some(cronjob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images() {
        let cases = [
            ("nginx", "nginx", "nginx", None),
            ("nginx:alpine", "nginx", "nginx", Some("alpine")),
            ("docker.io/library/nginx:1.25", "docker.io/library/nginx", "nginx", Some("1.25")),
            ("registry:5000/team/nginx@sha256:abc", "registry:5000/team/nginx", "nginx", None),
            ("registry:5000/team/nginx:1.2@sha256:abc", "registry:5000/team/nginx", "nginx", Some("1.2")),
            ("registry:5000/nginx", "registry:5000/nginx", "nginx", None),
        ];
        for (image, name, short, tag) in cases {
            assert_eq!(Image::parse(image), Image { name, short, tag }, "{image}");
        }
    }

    #[test]
    fn owners() {
        assert_eq!(deployment_of_replica_set("demo-app-success-c485bc67b"), Some("demo-app-success"));
        assert_eq!(deployment_of_replica_set("nginx-7c5ddbdf54"), Some("nginx"));
        assert_eq!(deployment_of_replica_set("standalone-api"), None);
        assert_eq!(deployment_of_replica_set("standalone"), None);
        assert_eq!(cronjob_of_job("backup-28930125"), Some("backup"));
        assert_eq!(cronjob_of_job("pi"), None);
        assert_eq!(cronjob_of_job("migrate-v2"), None);
    }
}
