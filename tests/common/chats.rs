//! The steps of a chat that many tests take: an agent going available, a visitor asking, the
//! offer accepted, messages both ways, the decision after the end.

use super::{agent_token, visitor_token, Client, Cluster};
use serde_json::json;
use switchboard::app::Running;

/// An available agent connected to `node`.
pub async fn available_agent(
    cluster: &Cluster,
    node: &Running,
    username: &str,
    max_chats: i64,
) -> Client {
    cluster.agent(username, max_chats).await;
    online_agent(node, username).await
}

/// An existing agent logged in on `node`, connected and available.
pub async fn online_agent(node: &Running, username: &str) -> Client {
    let token = agent_token(node, username).await;
    let mut a = Client::agent(node, &token).await;
    a.expect("status").await;
    set_status(&mut a, "available").await;
    a
}

/// The agent sets its status and waits until its connection reports the new one.
pub async fn set_status(agent: &mut Client, status: &str) {
    agent
        .send(json!({"type": "set_status", "status": status}))
        .await;
    agent
        .expect_where(status, |f| f["type"] == "status" && f["status"] == status)
        .await;
}

/// The agent takes the offer of `chat` and the visitor sees the chat start.
pub async fn accept_offer(agent: &mut Client, visitor: &mut Client, chat: &str) {
    let c = chat.to_string();
    agent
        .expect_where("offer", move |f| {
            f["type"] == "offer" && f["chat_id"] == c.as_str()
        })
        .await;
    agent.send(json!({"type": "accept", "chat_id": chat})).await;
    visitor.expect("chat_started").await;
}

/// One exchange in a running chat: the visitor's `from_visitor` is acknowledged and reaches the
/// agent, then the agent's `from_agent` reaches the visitor.
pub async fn both_ways(
    visitor: &mut Client,
    agent: &mut Client,
    chat: &str,
    from_visitor: &str,
    from_agent: &str,
) {
    visitor
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": format!("v:{from_visitor}"), "text": from_visitor}))
        .await;
    visitor.expect("ack").await;
    agent.expect_text(from_visitor).await;
    agent
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": format!("a:{from_agent}"), "text": from_agent}))
        .await;
    visitor.expect_text(from_agent).await;
}

/// The agent decides `decision` on the ended `chat` and waits for its `decided`.
pub async fn decide(agent: &mut Client, chat: &str, decision: &str) {
    agent
        .send(json!({"type": "decide", "chat_id": chat, "decision": decision}))
        .await;
    let c = chat.to_string();
    agent
        .expect_where("decided", move |f| {
            f["type"] == "decided" && f["chat_id"] == c.as_str()
        })
        .await;
}

/// A running chat: an available agent (capacity 2) on `b`, its visitor on `a`; returns
/// (visitor, agent, chat id).
pub async fn running_chat(
    cluster: &Cluster,
    a: &Running,
    b: &Running,
    agent: &str,
) -> (Client, Client, String) {
    let mut ag = available_agent(cluster, b, agent, 2).await;
    let (mut v, chat, _, _) = requesting_visitor(a, "hello").await;
    accept_offer(&mut ag, &mut v, &chat).await;
    ag.expect("chat_started").await;
    (v, ag, chat)
}

/// A visitor on `node` who asked for a chat; returns (client, chat id, visitor id, token).
pub async fn requesting_visitor(
    node: &Running,
    question: &str,
) -> (Client, String, String, String) {
    let (vid, token) = visitor_token(node).await;
    let mut v = Client::visitor(node, &token).await;
    let chat = v
        .request_chat(json!({"type": "request_chat", "name": "Vera", "email": "vera@example.com", "question": question}))
        .await;
    (v, chat, vid, token)
}
