use kvraft::sim::raft_cluster::*;
use std::time::Duration;

#[madsim::test]
async fn smoke() {
    let cfg = RaftCluster::new(3, true, "smoke").await;
    cfg.begin("smoke");
    let l = cfg.check_one_leader().await;
    println!("leader {l} term {}", cfg.check_terms());
    let t = std::time::Instant::now();
    for i in 0..100 {
        cfg.one(cmd_int(i), 3, false).await;
    }
    println!("100 ones took {:?}", t.elapsed());
    let t = std::time::Instant::now();
    for i in 0..100 {
        let (idx, _) = cfg.start(l, cmd_int(1000 + i)).unwrap();
        while cfg.n_committed(idx).0 < 1 { tokio::time::sleep(Duration::from_millis(1)).await; }
    }
    println!("100 commits at leader took {:?}", t.elapsed());
    cfg.crash1(l);
    let l2 = cfg.check_one_leader().await;
    cfg.one(cmd_int(7), 2, true).await;
    cfg.start1(l).await;
    cfg.connect(l);
    cfg.one(cmd_int(8), 3, true).await;
    println!("new leader {l2}");
    cfg.end();
}
