//! Which server actions the console offers enabled: those the caller's
//! policy allows and the server's state admits now, by the same table
//! the conductor decides with ([`novalog_schemas::preconditions`]). A
//! refused one carries the message the API would answer with (Nova's
//! 409, or 403). Pure.

use novalog_schemas::preconditions::{self, Caller};
use novalog_schemas::{Instance, ServerAction};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::Context;
use crate::policy::{self, Rule};

/// An action button.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offer {
    /// Stable name (`stop`, `reboot-hard`, ...).
    pub name: &'static str,
    pub label: &'static str,
    /// The body of `POST /v2.1/servers/{id}/action`.
    pub body: Value,
    pub allowed: bool,
    /// Why not, when not: the API's message.
    pub reason: Option<String>,
}

/// The actions offered, each with its body, its `ServerAction` and Nova's
/// policy rule.
fn catalog() -> Vec<(
    &'static str,
    &'static str,
    Value,
    ServerAction,
    &'static str,
)> {
    vec![
        (
            "start",
            "Start",
            json!({"os-start": null}),
            ServerAction::Start,
            "os_compute_api:servers:start",
        ),
        (
            "stop",
            "Stop",
            json!({"os-stop": null}),
            ServerAction::Stop,
            "os_compute_api:servers:stop",
        ),
        (
            "reboot",
            "Reboot",
            json!({"reboot": {"type": "SOFT"}}),
            ServerAction::Reboot { hard: false },
            "os_compute_api:servers:reboot",
        ),
        (
            "reboot-hard",
            "Hard reboot",
            json!({"reboot": {"type": "HARD"}}),
            ServerAction::Reboot { hard: true },
            "os_compute_api:servers:reboot",
        ),
        (
            "pause",
            "Pause",
            json!({"pause": null}),
            ServerAction::Pause,
            "os_compute_api:os-pause-server:pause",
        ),
        (
            "unpause",
            "Unpause",
            json!({"unpause": null}),
            ServerAction::Unpause,
            "os_compute_api:os-pause-server:unpause",
        ),
        (
            "suspend",
            "Suspend",
            json!({"suspend": null}),
            ServerAction::Suspend,
            "os_compute_api:os-suspend-server:suspend",
        ),
        (
            "resume",
            "Resume",
            json!({"resume": null}),
            ServerAction::Resume,
            "os_compute_api:os-suspend-server:resume",
        ),
        (
            "shelve",
            "Shelve",
            json!({"shelve": null}),
            ServerAction::Shelve { image_id: None },
            "os_compute_api:os-shelve:shelve",
        ),
        (
            "unshelve",
            "Unshelve",
            json!({"unshelve": null}),
            ServerAction::Unshelve {
                availability_zone: None,
                host: None,
            },
            "os_compute_api:os-shelve:unshelve",
        ),
        (
            "lock",
            "Lock",
            json!({"lock": null}),
            ServerAction::Lock { reason: None },
            "os_compute_api:os-lock-server:lock",
        ),
        (
            "unlock",
            "Unlock",
            json!({"unlock": null}),
            ServerAction::Unlock,
            "os_compute_api:os-lock-server:unlock",
        ),
    ]
}

/// Every action for `ctx` on `i`, enabled or with the reason it is not.
/// Delete comes last: only a lock (for anyone but an administrator) or
/// the policy stops it.
pub fn offers(ctx: &Context, i: &Instance) -> Vec<Offer> {
    let caller = Caller {
        is_admin: ctx.is_admin,
        project_id: &ctx.project_id,
    };
    let refusal = |rule: Rule| {
        (!policy::allowed(ctx, rule, Some(&i.project_id)))
            .then(|| format!("Policy doesn't allow {} to be performed.", rule.name()))
    };
    let mut out: Vec<Offer> = catalog()
        .into_iter()
        .map(|(name, label, body, action, rule)| {
            let reason = refusal(Rule::OwnerOrAdmin(rule)).or_else(|| {
                preconditions::check(&action, i, caller)
                    .err()
                    .map(|r| r.rejection(action.name(), &i.id).message)
            });
            Offer {
                name,
                label,
                body,
                allowed: reason.is_none(),
                reason,
            }
        })
        .collect();
    let delete = refusal(Rule::OwnerOrAdmin("os_compute_api:servers:delete")).or_else(|| {
        (i.is_locked() && !ctx.is_admin).then(|| format!("Instance {} is locked", i.id))
    });
    out.push(Offer {
        name: "delete",
        label: "Delete",
        body: Value::Null,
        allowed: delete.is_none(),
        reason: delete,
    });
    out
}
