//! The tags DogStatsD adds to a metric after its sender (origin detection): the tagger's tags of
//! each container and pod of the node, at DogStatsD's cardinality.

use crate::annotations;
use crate::config::{Cardinality, TagSettings};
use crate::pod::Pod;
use crate::tagger::{self, OriginIndex};

/// Every pod by UID and every container with a runtime ID (init containers too) by that ID.
pub fn index(pods: &[Pod], settings: &TagSettings, cardinality: Cardinality) -> OriginIndex {
    let mut index = OriginIndex::default();
    for pod in pods {
        // The annotations' problems are resolve's to report.
        let (parsed, _) = annotations::parse(pod);
        if !pod.metadata.uid.is_empty() {
            let tags = tagger::pod_tags(pod, &parsed.tags_of(None), settings);
            index.insert_pod(pod.metadata.uid.clone(), tags.at(cardinality));
        }
        for container in pod.all_containers() {
            let Some(id) = pod.container_id(&container.name) else { continue };
            let annotation_tags = parsed.tags_of(Some(&container.name));
            let tags = tagger::container_tags(pod, container, &annotation_tags, settings);
            index.insert_container(id.to_string(), tags.at(cardinality));
        }
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TagMapping;
    use crate::pod::{Container, ContainerStatus, PodList};

    fn fixture_pods() -> Vec<Pod> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/kubelet/pods.json");
        serde_json::from_str::<PodList>(&std::fs::read_to_string(path).unwrap()).unwrap().items
    }

    const DEMO_APP_ID: &str = "5f93d91c7aee0230f77fbe9ec642dd60958f5098e76de270a933285c24dfdc6f";
    const DEMO_APP_UID: &str = "24d6daa3-10d8-11e8-bd5a-42010af00137";

    #[test]
    fn indexes_a_real_kubelet_pod_list() {
        let pods = fixture_pods();
        let index = index(&pods, &TagSettings::default(), Cardinality::High);
        // 6 pods; the 7 containers with an ID (kube-proxy's has none yet).
        assert_eq!(index.len(), 13);
        let id_tag = format!("container_id:{DEMO_APP_ID}");
        assert_eq!(
            index.by_container_id(DEMO_APP_ID).unwrap().as_ref(),
            [
                id_tag.as_str(),
                "container_name:demo-app",
                "display_container_name:demo-app_demo-app-success-c485bc67b-klj45",
                "image_id:hkaj/demo-app@sha256:0b638d574b905c853c67f69801677d219ae177c38d7fab25292934ec5564642f",
                "image_name:hkaj/demo-app",
                "image_tag:latest",
                "kube_container_name:demo-app",
                "kube_deployment:demo-app-success",
                "kube_namespace:default",
                "kube_ownerref_kind:replicaset",
                "kube_ownerref_name:demo-app-success-c485bc67b",
                "kube_qos:Burstable",
                "kube_replica_set:demo-app-success-c485bc67b",
                "pod_name:demo-app-success-c485bc67b-klj45",
                "pod_phase:running",
                "short_image:demo-app",
            ]
        );
        assert!(index.by_container_id(&format!("docker://{DEMO_APP_ID}")).is_none(), "IDs are kept without their scheme");
        assert_eq!(
            index.by_pod_uid("2edfd4d9-10ce-11e8-bd5a-42010af00137").unwrap().as_ref(),
            [
                "kube_daemon_set:fluentd-gcp-v2.0.10",
                "kube_namespace:kube-system",
                "kube_ownerref_kind:daemonset",
                "kube_ownerref_name:fluentd-gcp-v2.0.10",
                "kube_qos:Burstable",
                "pod_name:fluentd-gcp-v2.0.10-9q9t4",
                "pod_phase:running",
            ]
        );
    }

    #[test]
    fn tags_at_the_cardinality_asked_with_the_settings_labels() {
        let pods = fixture_pods();
        let settings = TagSettings { pod_labels_as_tags: TagMapping([("app".into(), "kube_app".into())].into()), ..Default::default() };
        let index = index(&pods, &settings, Cardinality::Low);
        let low = [
            "image_id:hkaj/demo-app@sha256:0b638d574b905c853c67f69801677d219ae177c38d7fab25292934ec5564642f",
            "image_name:hkaj/demo-app",
            "image_tag:latest",
            "kube_app:demo-app",
            "kube_container_name:demo-app",
            "kube_deployment:demo-app-success",
            "kube_namespace:default",
            "kube_ownerref_kind:replicaset",
            "kube_qos:Burstable",
            "kube_replica_set:demo-app-success-c485bc67b",
            "pod_phase:running",
            "short_image:demo-app",
        ];
        assert_eq!(index.by_container_id(DEMO_APP_ID).unwrap().as_ref(), low);
        assert_eq!(
            index.by_pod_uid(DEMO_APP_UID).unwrap().as_ref(),
            [
                "kube_app:demo-app",
                "kube_deployment:demo-app-success",
                "kube_namespace:default",
                "kube_ownerref_kind:replicaset",
                "kube_qos:Burstable",
                "kube_replica_set:demo-app-success-c485bc67b",
                "pod_phase:running",
            ]
        );
    }

    #[test]
    fn annotation_tags_and_init_containers() {
        let mut pod = fixture_pods().into_iter().find(|p| p.metadata.uid == DEMO_APP_UID).unwrap();
        let annotations = &mut pod.metadata.annotations;
        annotations.insert("ad.datadoghq.com/tags".into(), r#"{"team": "shop", "+request": "r1"}"#.into());
        annotations.insert("ad.datadoghq.com/migrate.tags".into(), r#"{"step": "migrate"}"#.into());
        pod.spec.init_containers.push(Container { name: "migrate".into(), image: "hkaj/migrate:2".into(), ..Default::default() });
        pod.status.init_container_statuses.push(ContainerStatus {
            name: "migrate".into(),
            container_id: Some("containerd://init-id".into()),
            ..Default::default()
        });
        let pods = [pod];

        let low = index(&pods, &TagSettings::default(), Cardinality::Low);
        let init = low.by_container_id("init-id").unwrap();
        for tag in ["kube_container_name:migrate", "image_tag:2", "team:shop", "step:migrate"] {
            assert!(init.contains(&tag.to_string()), "{tag} not in {init:?}");
        }
        assert!(!init.iter().any(|t| t.starts_with("request:")), "`+request` is high cardinality");
        let app = low.by_container_id(DEMO_APP_ID).unwrap();
        assert!(app.contains(&"team:shop".to_string()) && !app.contains(&"step:migrate".to_string()));
        assert!(low.by_pod_uid(DEMO_APP_UID).unwrap().contains(&"team:shop".to_string()));

        let high = index(&pods, &TagSettings::default(), Cardinality::High);
        assert!(high.by_container_id("init-id").unwrap().contains(&"request:r1".to_string()));
        assert!(high.by_pod_uid(DEMO_APP_UID).unwrap().contains(&"request:r1".to_string()));
    }
}
