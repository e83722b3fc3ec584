//! Fakes of the Kubernetes endpoints adrt talks to, speaking the real wire protocol: used by the
//! integration tests and by `adrt bench`, which measures discovery against them.

pub mod fake_kube;
