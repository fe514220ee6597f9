//! The benchmark payload: a realistic ~330-byte `task.created` entity.

use serde::{Deserialize, Serialize};

/// A task, as a project-management backend would broadcast it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskCreated {
    pub id: String,
    pub project_id: String,
    pub title: String,
    pub description: String,
    pub status: String,
    pub priority: u32,
    pub assignee_id: Option<String>,
    pub labels: Vec<String>,
    pub created_at: String,
    pub seq: u64,
}

impl TaskCreated {
    pub fn sample(seq: u64) -> Self {
        TaskCreated {
            id: format!("task_01HZX3K9QGJ8F7Y2M4{seq:08}"),
            project_id: "proj_7f3a9c2e".into(),
            title: "Update the onboarding checklist for new enterprise tenants".into(),
            description: "Add SSO setup, SCIM provisioning and audit-log export steps; link the runbook.".into(),
            status: "todo".into(),
            priority: (seq % 4) as u32,
            assignee_id: Some("user_4821".into()),
            labels: vec!["onboarding".into(), "enterprise".into()],
            created_at: "2026-11-24T10:15:30.123Z".into(),
            seq,
        }
    }

    /// Something derived from every field kind, so no decode is optimised away.
    pub fn touch(&self) -> u64 {
        u64::from(self.priority) + self.title.len() as u64
    }
}
