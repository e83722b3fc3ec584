//! The YAML layer: the same keys as the `adrt run` flags, with underscores
//! (`kubelet_url: https://...`); an unknown key is an error that names it.

use std::path::Path;

use super::{ConfigError, Layer};

pub const DEFAULT_CONFIG_FILE: &str = "/etc/adrt/adrt.yaml";

pub fn from_file(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    parse(path, &text)
}

fn parse(path: &Path, text: &str) -> Result<Layer, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Layer::default());
    }
    serde_yaml::from_str(text).map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flags_names_and_rejects_typos() {
        let path = Path::new("/etc/adrt/adrt.yaml");
        let layer = parse(path, "listener: api\ncheck_interval: 30\nenv_allowlist: [POD_IP]\n").unwrap();
        assert_eq!(layer.listener, Some(super::super::ListenerKind::Api));
        assert_eq!(layer.env_allowlist, Some(vec!["POD_IP".to_string()]));
        let err = parse(path, "kubelet_pol: 3\n").unwrap_err().to_string();
        assert!(err.starts_with("/etc/adrt/adrt.yaml: unknown field `kubelet_pol`"), "{err}");
        assert!(parse(path, "\n").is_ok());
        // Datadog's map form, and the JSON text its environment variable holds.
        let layer = parse(path, "kubernetes_pod_labels_as_tags:\n  App: kube_app\n").unwrap();
        assert_eq!(layer.kubernetes_pod_labels_as_tags.unwrap().0["app"], "kube_app");
        let layer = parse(path, "kubernetes_pod_annotations_as_tags: '{\"team\": \"team\"}'\n").unwrap();
        assert_eq!(layer.kubernetes_pod_annotations_as_tags.unwrap().0["team"], "team");
    }
}
