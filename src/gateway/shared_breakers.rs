//! Circuit-breaker state shared through Redis. Once a second each instance publishes the
//! breakers it opened itself (a key per deployment that expires when the cooldown ends) and
//! opens its own closed breakers for deployments another instance found failing. One pipelined
//! round trip per second per instance, none on the request path: a failing upstream is avoided
//! by every instance within about a second of the first one noticing.

use std::sync::Arc;
use std::time::Duration;

use super::Gateway;

/// How often breaker state is exchanged.
const SYNC_EVERY: Duration = Duration::from_secs(1);

fn key(deployment: &str) -> String {
    format!("askacme:breaker:{deployment}")
}

impl Gateway {
    /// Runs forever (spawn it): connects to Redis, then exchanges breaker state every second.
    /// Redis trouble is logged and retried; breakers keep working locally meanwhile.
    pub async fn share_breakers(self: Arc<Self>, url: crate::config::Secret) {
        let mut connection = None;
        let mut tick = tokio::time::interval(SYNC_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if connection.is_none() {
                connection = match redis::Client::open(url.expose()) {
                    Ok(client) => redis::aio::ConnectionManager::new(client).await.ok(),
                    Err(_) => None,
                };
            }
            let Some(redis) = connection.as_mut() else {
                tracing::warn!(
                    url = url.redacted_url(),
                    "cannot reach Redis to share breaker state"
                );
                continue;
            };
            if let Err(e) = self.exchange_breakers(redis).await {
                tracing::warn!(error = %e, "sharing breaker state failed");
            }
        }
    }

    async fn exchange_breakers(
        &self,
        redis: &mut redis::aio::ConnectionManager,
    ) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        for deployment in self.deployments.values() {
            if let Some(remaining) = deployment.health.opened_here() {
                let millis = remaining.as_millis().max(1) as u64;
                pipe.cmd("SET")
                    .arg(key(&deployment.name))
                    .arg(1)
                    .arg("PX")
                    .arg(millis)
                    .ignore();
            }
            pipe.cmd("PTTL").arg(key(&deployment.name));
        }
        let remaining: Vec<i64> = pipe.query_async(redis).await?;
        for (deployment, millis) in self.deployments.values().zip(remaining) {
            if millis > 0 {
                deployment
                    .health
                    .adopt_open(Duration::from_millis(millis as u64));
            }
        }
        Ok(())
    }
}
