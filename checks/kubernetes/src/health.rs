//! `/healthz` → the `kubernetes.kubelet.check` service check.

use adrt_check_sdk::{CheckError, Context, Status};

use crate::kubelet::Kubelet;

pub const SERVICE_CHECK: &str = "kubernetes.kubelet.check";

/// OK when the kubelet answers 200, CRITICAL with the reason otherwise. Fails the run only when
/// the kubelet cannot be reached at all: an unhealthy kubelet may still serve its pods and stats.
pub fn check(ctx: &mut Context<'_>, kubelet: &mut Kubelet) -> Result<(), CheckError> {
    match kubelet.get(ctx, "/healthz") {
        Ok(_) => {
            ctx.service_check(SERVICE_CHECK, Status::Ok, &[], None);
            Ok(())
        }
        Err(error) => {
            ctx.service_check(SERVICE_CHECK, Status::Critical, &[], Some(&error.message));
            if error.unreachable { Err(CheckError::Run(error.message)) } else { Ok(()) }
        }
    }
}
