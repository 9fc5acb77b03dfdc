//! Topic names (DESIGN §3), prefixed by a namespace so several clouds (or
//! cells, or test runs) can share one broker.

use novalog_log::TopicSpec;

#[derive(Debug, Clone)]
pub struct Topics {
    pub namespace: String,
    pub intents: String,
    pub instances: String,
    pub scheduler: String,
    pub compute: String,
    pub compute_events: String,
    pub hosts: String,
    pub catalog: String,
    pub dead_letter: String,
    /// Rated usage per closed period, for downstream systems.
    pub billing: String,
}

impl Topics {
    pub fn new(namespace: &str) -> Self {
        let t = |n: &str| format!("{namespace}{n}");
        Topics {
            namespace: namespace.to_owned(),
            intents: t("intents"),
            instances: t("instances"),
            scheduler: t("scheduler"),
            compute: t("compute"),
            compute_events: t("compute-events"),
            hosts: t("hosts"),
            catalog: t("catalog"),
            dead_letter: t("dead-letter"),
            billing: t("billing"),
        }
    }

    /// The consumer group of service `name` in this namespace.
    pub fn group(&self, name: &str) -> String {
        format!("{}{name}", self.namespace)
    }

    pub fn all(&self) -> Vec<&str> {
        vec![
            &self.intents,
            &self.instances,
            &self.scheduler,
            &self.compute,
            &self.compute_events,
            &self.hosts,
            &self.catalog,
            &self.dead_letter,
            &self.billing,
        ]
    }

    pub fn specs(&self, partitions: i32) -> Vec<TopicSpec> {
        self.all()
            .into_iter()
            .map(|name| TopicSpec {
                name: name.to_owned(),
                partitions,
            })
            .collect()
    }
}
