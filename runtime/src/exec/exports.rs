//! The exports of a check component: found and type-checked once, when the check loads, and
//! called on each live instance.
//!
//! Not through bindgen's `CheckPre`/`Check`, which require every export of the world: `validate`
//! came in adrt:check 0.1.1, and a component built against 0.1.0 lacks it yet must load and run.
//! So `info`, `init` and `run` are required, `validate` is optional, and each found export is
//! type-checked against the types of [`super::bindings`] as bindgen's own `CheckIndices` does,
//! so that a component whose exports do not fit is refused when it loads, not when it runs.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{ComponentExportIndex, ComponentNamedList, Func, Instance, InstancePre, Lift, Lower};
use wasmtime::{Store, format_err};

use super::bindings::adrt::check::types::{CheckError, CheckInfo};
use super::store::StoreState;

type InfoParams = ();
type InfoResults = (CheckInfo,);
type InitParams<'a> = (&'a str,);
type InitResults = (Result<(), CheckError>,);
type RunParams<'a> = (&'a str, &'a str);
type RunResults = (Result<(), CheckError>,);
type ValidateParams<'a> = (&'a str, &'a str);
type ValidateResults = (Result<Vec<String>, CheckError>,);

/// Where a loaded check's exports are, checked against the contract.
#[derive(Clone)]
pub(crate) struct ExportIndices {
    info: ComponentExportIndex,
    init: ComponentExportIndex,
    run: ComponentExportIndex,
    /// `None`: the component was built before 0.1.1.
    validate: Option<ComponentExportIndex>,
}

impl ExportIndices {
    /// Finds and type-checks the exports; an error names the first that is missing or does not
    /// fit.
    pub(crate) fn new(pre: &InstancePre<StoreState>) -> wasmtime::Result<Self> {
        let required = |name: &str, found: Option<ComponentExportIndex>| found.ok_or_else(|| format_err!("no export `{name}` found"));
        Ok(ExportIndices {
            info: required("info", find::<InfoParams, InfoResults>(pre, "info")?)?,
            init: required("init", find::<InitParams<'_>, InitResults>(pre, "init")?)?,
            run: required("run", find::<RunParams<'_>, RunResults>(pre, "run")?)?,
            validate: find::<ValidateParams<'_>, ValidateResults>(pre, "validate")?,
        })
    }

    /// Does the component export `validate`?
    pub(crate) fn has_validate(&self) -> bool {
        self.validate.is_some()
    }
}

/// The index of the function export `name` if there is one, after checking its type.
fn find<Params, Results>(pre: &InstancePre<StoreState>, name: &str) -> wasmtime::Result<Option<ComponentExportIndex>>
where
    Params: ComponentNamedList + Lower,
    Results: ComponentNamedList + Lift,
{
    let Some((item, index)) = pre.component().get_export(None, name) else { return Ok(None) };
    let ComponentItem::ComponentFunc(func) = item else { return Err(format_err!("export `{name}` is not a function")) };
    // The check bindgen's generated `CheckIndices::new` makes of each export (hidden from the
    // docs because generated code is its user).
    func.typecheck::<Params, Results>(&pre.instance_type()).map_err(|e| e.context(format!("type-checking export func `{name}`")))?;
    Ok(Some(index))
}

/// The exports of one live instance.
pub(crate) struct Exports {
    info: Func,
    init: Func,
    run: Func,
    validate: Option<Func>,
}

impl Exports {
    /// The exports of `instance`, found at `indices` when the check loaded.
    pub(crate) fn of(instance: &Instance, store: &mut Store<StoreState>, indices: &ExportIndices) -> wasmtime::Result<Self> {
        let mut func = |index: &ComponentExportIndex| {
            instance.get_func(&mut *store, index).ok_or_else(|| format_err!("an export found when the check loaded is gone"))
        };
        Ok(Exports {
            info: func(&indices.info)?,
            init: func(&indices.init)?,
            run: func(&indices.run)?,
            validate: indices.validate.as_ref().map(&mut func).transpose()?,
        })
    }

    pub(crate) async fn info(&self, store: &mut Store<StoreState>) -> wasmtime::Result<CheckInfo> {
        let (info,) = self.info.typed::<InfoParams, InfoResults>(&*store)?.call_async(&mut *store, ()).await?;
        Ok(info)
    }

    pub(crate) async fn init(&self, store: &mut Store<StoreState>, init_config: &str) -> wasmtime::Result<Result<(), CheckError>> {
        let (result,) = self.init.typed::<InitParams<'_>, InitResults>(&*store)?.call_async(&mut *store, (init_config,)).await?;
        Ok(result)
    }

    pub(crate) async fn run(&self, store: &mut Store<StoreState>, instance_id: &str, instance: &str) -> wasmtime::Result<Result<(), CheckError>> {
        let (result,) = self.run.typed::<RunParams<'_>, RunResults>(&*store)?.call_async(&mut *store, (instance_id, instance)).await?;
        Ok(result)
    }

    /// An error, like a trap, when the component has no `validate` (see
    /// [`ExportIndices::has_validate`]).
    pub(crate) async fn validate(
        &self,
        store: &mut Store<StoreState>,
        init_config: &str,
        instance: &str,
    ) -> wasmtime::Result<Result<Vec<String>, CheckError>> {
        let validate = self.validate.as_ref().ok_or_else(|| format_err!("no export `validate` found"))?;
        let (result,) =
            validate.typed::<ValidateParams<'_>, ValidateResults>(&*store)?.call_async(&mut *store, (init_config, instance)).await?;
        Ok(result)
    }
}
