//! Admin settings across two nodes, on Redis with SQLite and PostgreSQL: the widget's
//! appearance saved on one node is served by the other (within its cache time), checked on
//! the way in and audited without its texts; queues created and set up on one node route
//! requests and tell watching widgets on the other; only admins may do either.

mod common;

use common::integrations::*;
use common::*;
use serde_json::{json, Value};
use switchboard::app::Running;

/// The newest audit entries of `action`.
async fn audit(node: &Running, token: &str, action: &str) -> Vec<Value> {
    let (status, v) = get(
        &format!("{}/api/admin/audit?action={action}", http(node)),
        Some(token),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["entries"].as_array().unwrap().clone()
}

async fn appearance_reaches_the_other_node(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let admin = common::accounts::admin(&cluster, &a, "root").await;

    // Nothing saved yet: the built-in look, for anyone, with CORS for the widget's site.
    let resp = reqwest::Client::new()
        .get(format!("{}/api/widget/appearance", http(&b)))
        .header("origin", "https://shop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );
    let builtin: Value = resp.json().await.unwrap();
    assert_eq!(builtin["position"], "right");
    assert_eq!(builtin["color"], "");

    let look = json!({
        "color": "#AA3300",
        "greeting": "Hello <b>there</b>\nHow can we help?",
        "position": "left",
        "launcher_text": "Talk to us",
        "offline_text": "We are back at nine."
    });
    let (status, saved) = put(
        &format!("{}/api/admin/appearance", http(&a)),
        look.clone(),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["color"], "#aa3300");
    assert_eq!(saved["greeting"], "Hello <b>there</b>\nHow can we help?");
    assert!(saved["updated_at"].as_i64().unwrap() > 0);

    // The saving node serves it at once; the other within its cache time.
    let (_, now) = get(&format!("{}/api/widget/appearance", http(&a)), None).await;
    assert_eq!(now["color"], "#aa3300");
    let url = format!("{}/api/widget/appearance", http(&b));
    let seen = eventually("the other node serves the new look", || async {
        let (_, v) = get(&url, None).await;
        (v["color"] == "#aa3300").then_some(v)
    })
    .await;
    assert_eq!(seen["position"], "left");
    assert_eq!(seen["launcher_text"], "Talk to us");
    assert_eq!(seen["offline_text"], "We are back at nine.");
    assert!(seen.get("updated_at").is_none(), "{seen}");
    let (_, admin_view) = get(&format!("{}/api/admin/appearance", http(&b)), Some(&admin)).await;
    assert_eq!(admin_view["greeting"], saved["greeting"]);

    // Bad values are refused with the field named, and change nothing.
    for (body, says) in [
        (json!({"color": "red"}), "color"),
        (json!({"color": "#12345"}), "color"),
        (json!({"position": "top"}), "position"),
        (json!({"launcher_text": "x".repeat(41)}), "launcher_text"),
        (json!({"greeting": "a\u{7}b"}), "greeting"),
        (json!({"colour": "#000000"}), "unknown field"),
    ] {
        let (status, v) = put(
            &format!("{}/api/admin/appearance", http(&b)),
            body.clone(),
            Some(&admin),
        )
        .await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"], "invalid_field", "{body}: {v}");
        assert!(v["message"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let (_, still) = get(&format!("{}/api/admin/appearance", http(&a)), Some(&admin)).await;
    assert_eq!(still["color"], "#aa3300");

    // Agents and strangers may not change it.
    cluster.agent("ann", 2).await;
    let ann = agent_token(&b, "ann").await;
    let (status, _) = put(
        &format!("{}/api/admin/appearance", http(&b)),
        json!({}),
        Some(&ann),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = put(
        &format!("{}/api/admin/appearance", http(&b)),
        json!({}),
        None,
    )
    .await;
    // Without a session, as every agent endpoint answers (see docs/protocol.md).
    assert_eq!(status, 403);

    // One audit entry, with kinds and sizes, not the texts.
    let entries = audit(&b, &admin, "appearance.change").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["actor"], "root");
    assert_eq!(entries[0]["detail"]["color"], "#aa3300");
    assert_eq!(entries[0]["detail"]["launcher_text_chars"], 10);
    assert!(!entries[0].to_string().contains("Talk to us"));
    cluster.cleanup().await;
}

async fn queues_set_up_on_one_node_work_on_the_other(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    cluster.store.ensure_queue("general").await.unwrap();
    let (a, b) = (cluster.node().await, cluster.node().await);
    let admin = common::accounts::admin(&cluster, &a, "root").await;
    let queues = format!("{}/api/admin/queues", http(&a));

    let (status, created) = post(
        &queues,
        json!({"name": "billing", "offline_text": "Billing answers on weekdays."}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["offline_text"], "Billing answers on weekdays.");
    assert_eq!(created["business_hours"], Value::Null);
    let (status, v) = post(&queues, json!({"name": "billing"}), Some(&admin)).await;
    assert_eq!((status, v["error"].as_str()), (409, Some("wrong_state")));
    for bad in [
        json!({"name": "Bad Name"}),
        json!({"name": ""}),
        json!({"name": "x", "business_hours": {"timezone": "Mars/Base"}}),
        json!({"name": "y", "offline_text": "z".repeat(501)}),
    ] {
        let (status, v) = post(&queues, bad.clone(), Some(&admin)).await;
        assert_eq!(status, 400, "{bad}: {v}");
    }
    // A refused queue was not created half-way.
    let (_, list) = get(&format!("{}/api/admin/queues", http(&b)), Some(&admin)).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["billing", "general"]);

    // A visitor on node A watches the new queue; business hours set on node B (closed every
    // day) reach the widget at once.
    let (_, token) = visitor_token(&a).await;
    let mut visitor = Client::visitor(&a, &token).await;
    visitor
        .send(json!({"type": "watch_queue", "queue": "billing"}))
        .await;
    visitor.expect("queue_status").await;
    let (status, v) = put(
        &format!("{}/api/admin/queues/billing", http(&b)),
        json!({"offline_text": "Closed for stocktaking.", "business_hours": {"timezone": "UTC", "days": {}}}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let closed = visitor
        .expect_where("closed status", |f| {
            f["type"] == "queue_status" && f["offline_text"] == "Closed for stocktaking."
        })
        .await;
    assert_eq!(closed["in_hours"], false, "{closed}");

    // Open all week again; an agent moved into the queue on node B gets the request made on A.
    let all_day: Value = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| (d.to_string(), json!([["00:00", "24:00"]])))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let (status, _) = put(
        &format!("{}/api/admin/queues/billing", http(&a)),
        json!({"business_hours": {"timezone": "UTC", "days": all_day}}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200);
    let mut agent = available_agent(&cluster, &b, "bea", 2).await;
    let bea = cluster.store.agents().await.unwrap();
    let bea = bea.iter().find(|x| x.username == "bea").unwrap().id;
    let (status, v) = patch(
        &format!("{}/api/admin/agents/{bea}", http(&a)),
        json!({"queues": ["billing"]}),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    // The change makes the agent's sockets reconnect with the new queues.
    assert_eq!(agent.expect_close().await, 4409);
    let mut agent = online_agent(&b, "bea").await;
    let chat = visitor
        .request_chat(json!({"type": "request_chat", "name": "Vera", "queue": "billing"}))
        .await;
    let offer = agent
        .expect_where("offer", |f| {
            f["type"] == "offer" && f["chat_id"] == chat.as_str()
        })
        .await;
    assert_eq!(offer["queue"], "billing");

    // Only admins; every change audited with sizes, not texts.
    let ann_id = cluster.agent("ann", 2).await;
    assert!(ann_id > 0);
    let ann = agent_token(&b, "ann").await;
    let (status, _) = post(&queues, json!({"name": "other"}), Some(&ann)).await;
    assert_eq!(status, 403);
    let (status, _) = get(&format!("{}/api/admin/queues", http(&b)), Some(&ann)).await;
    assert_eq!(status, 403);
    let created = audit(&b, &admin, "queue.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["target"], "queue:billing");
    let changed = audit(&b, &admin, "queue.change").await;
    assert_eq!(changed.len(), 2);
    assert_eq!(changed[1]["detail"]["offline_text_chars"], 23);
    assert!(!changed[1].to_string().contains("stocktaking"));
    cluster.cleanup().await;
}

/// A renamed queue: refused while a chat runs in it; then its agents, settings and routing move
/// to the new name on every node, and its old name is refused even by a node that knew it.
async fn queue_rename_is_refused_while_live_then_moves_everything(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    cluster.store.ensure_queue("general").await.unwrap();
    let (a, b) = (cluster.node().await, cluster.node().await);
    let admin = common::accounts::admin(&cluster, &a, "root").await;
    let (status, _) = post(
        &format!("{}/api/admin/queues", http(&a)),
        json!({"name": "sales", "offline_text": "Sales is out."}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 201);
    let (status, bea) = post(
        &format!("{}/api/admin/agents", http(&a)),
        json!({"username": "bea", "password": "secret-password", "queues": ["sales"], "max_chats": 2}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 201, "{bea}");
    let mut agent = online_agent(&b, "bea").await;

    // Node B learns the name "sales" (a widget watching it) before the rename.
    let (_, vtoken) = visitor_token(&b).await;
    let mut watcher = Client::visitor(&b, &vtoken).await;
    watcher
        .send(json!({"type": "watch_queue", "queue": "sales"}))
        .await;
    watcher.expect("queue_status").await;

    // A running chat in "sales": the rename is refused, nothing changes.
    let (_, vt) = visitor_token(&a).await;
    let mut visitor = Client::visitor(&a, &vt).await;
    let chat = visitor
        .request_chat(json!({"type": "request_chat", "name": "Vera", "queue": "sales"}))
        .await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    let rename = format!("{}/api/admin/queues/sales/rename", http(&a));
    let (status, v) = post(&rename, json!({"name": "support"}), Some(&admin)).await;
    assert_eq!(status, 409, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("1 live chat"),
        "{v}"
    );
    let (status, _) = get(
        &format!("{}/api/admin/queues/support", http(&b)),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 404);

    // Bad requests change nothing either.
    for (body, code) in [
        (json!({"name": "Bad Name"}), 400),
        (json!({"name": "general"}), 409),
        (json!({"name": "sales"}), 400),
    ] {
        let (status, v) = post(&rename, body.clone(), Some(&admin)).await;
        assert_eq!(status, code, "{body}: {v}");
    }
    let (status, _) = post(
        &format!("{}/api/admin/queues/nope/rename", http(&a)),
        json!({"name": "other"}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 404);

    // The chat ends (its wrap-up does not hold the queue): the rename goes through.
    visitor.send(json!({"type": "end", "chat_id": chat})).await;
    visitor.expect("chat_ended").await;
    let (status, v) = post(&rename, json!({"name": "support"}), Some(&admin)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["name"], "support");
    assert_eq!(v["offline_text"], "Sales is out.");
    // The queue's agent reconnects with the new name.
    let code = agent.expect_close().await;
    assert_eq!(code, 4409);
    let (_, list) = get(&format!("{}/api/admin/agents", http(&b)), Some(&admin)).await;
    let bea_now = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["username"] == "bea")
        .unwrap()
        .clone();
    assert_eq!(bea_now["queues"], json!(["support"]));

    // Node B knew "sales": requests and widgets for it are refused there all the same.
    let (_, vt2) = visitor_token(&b).await;
    let mut late = Client::visitor(&b, &vt2).await;
    late.send(json!({"type": "request_chat", "name": "Late", "queue": "sales"}))
        .await;
    let e = late.expect("error").await;
    assert_eq!(e["code"], 4004, "{e}");
    late.send(json!({"type": "watch_queue", "queue": "sales"}))
        .await;
    assert_eq!(late.expect("error").await["code"], 4004);

    // The new name routes to the agent, who is back under it.
    let mut agent = online_agent(&b, "bea").await;
    let chat = late
        .request_chat(json!({"type": "request_chat", "name": "Late", "queue": "support"}))
        .await;
    let offer = agent
        .expect_where("offer", |f| {
            f["type"] == "offer" && f["chat_id"] == chat.as_str()
        })
        .await;
    assert_eq!(offer["queue"], "support");

    // The mark on the old name lasts longer than any node's cache of queue names, not forever.
    let ttl: i64 = redis_cli(&["pttl", &format!("{}{{r}}:gone:sales", cluster.prefix)])
        .trim()
        .parse()
        .unwrap();
    assert!((60_000..=120_000).contains(&ttl), "{ttl}");

    // A new queue may take the old name again.
    let (status, _) = post(
        &format!("{}/api/admin/queues", http(&b)),
        json!({"name": "sales"}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 201);
    let (_, vt3) = visitor_token(&a).await;
    let mut again = Client::visitor(&a, &vt3).await;
    again
        .send(json!({"type": "watch_queue", "queue": "sales"}))
        .await;
    again.expect("queue_status").await;

    let renamed = audit(&b, &admin, "queue.rename").await;
    assert_eq!(renamed.len(), 1, "{renamed:?}");
    assert_eq!(renamed[0]["target"], "queue:support");
    assert_eq!(renamed[0]["detail"], json!({"from": "sales", "agents": 1}));
    cluster.cleanup().await;
}

sqlite_and_postgres!(queue_rename_is_refused_while_live_then_moves_everything => queue_rename_sqlite, queue_rename_postgres);

sqlite_and_postgres!(appearance_reaches_the_other_node => appearance_sqlite, appearance_postgres);

sqlite_and_postgres!(queues_set_up_on_one_node_work_on_the_other => queues_sqlite, queues_postgres);
