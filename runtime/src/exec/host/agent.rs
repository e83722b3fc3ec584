//! `agent`: the agent's settings a check needs (hostname, kubelet, procfs/sysfs roots).

use crate::exec::bindings::adrt::check::agent::{AgentContext, Host};
use crate::exec::store::StoreState;

impl Host for StoreState {
    fn context(&mut self) -> AgentContext {
        self.services.agent.to_wit()
    }
}
