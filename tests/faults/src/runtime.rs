//! The one tokio runtime of the suite's own async parts (the origin, the load), shared by
//! every scenario.

use std::sync::OnceLock;

/// The runtime of the suite's own async parts (the origin, the load).
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("faults")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot build the faults runtime: {e}"))
    })
}
