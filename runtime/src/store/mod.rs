//! The config store: check templates keyed by image name, kept outside the cluster's objects,
//! as the Datadog agent's `sd_config_backend` (the seed sets `SD_CONFIG_BACKEND=etcd`). They
//! become `ad_identifiers` templates, exactly like a conf.d file with `ad_identifiers: [<image>]`.

mod etcd;

pub use etcd::{EtcdStore, StoreError};
