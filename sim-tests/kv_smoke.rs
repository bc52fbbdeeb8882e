use kvraft::sim::kv_cluster::*;
use std::time::Instant;

#[madsim::test]
async fn kv_smoke() {
    let cfg = KvCluster::new(3, false, "kv_smoke").await;
    eprintln!("booted");
    let mut ck = cfg.make_client(&cfg.all()).await;
    eprintln!("client made");
    ck.put("x", "").await;
    eprintln!("put done");
    let t = Instant::now();
    for i in 0..1000 {
        ck.append("x", &format!("x 0 {i} y")).await;
    }
    let d = t.elapsed();
    println!("1000 appends: {:?} => {:.2} ms/op", d, d.as_secs_f64() * 1000.0 / 1000.0);
    let v = ck.get("x").await;
    assert_eq!(v.matches(" y").count(), 1000);
    let f = cfg.figures();
    println!("{:?}", (f.ops, f.mean_ms_per_op, f.net.requests_sent));
}
