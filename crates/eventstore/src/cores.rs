//! Work on a slice spread over the machine's cores: what costs far more per
//! item than reading it (decrypting a page, verifying seals) and would
//! otherwise keep one core busy while the others wait.

use std::sync::{Mutex, OnceLock};

/// The machine's cores, read once.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Runs `work` over `items` in up to one part per core, each part at least
/// `min_part` long (so few items run in one part, on this thread). Threads
/// take parts until none is left, so a thread that cannot be started costs
/// speed, never a part left undone. A panic in `work` is raised here.
pub(crate) fn on_cores<T: Send>(items: &mut [T], min_part: usize, work: impl Fn(&mut [T]) + Sync) {
    let parts = cores().min(items.len() / min_part.max(1)).max(1);
    if parts == 1 {
        work(items);
        return;
    }
    let chunk = items.len().div_ceil(parts);
    let queue = Mutex::new(items.chunks_mut(chunk).collect::<Vec<_>>());
    let run = || {
        loop {
            let part = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let Some(part) = part else { break };
            work(part);
        }
    };
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..parts)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("trellis-on-cores".into())
                    .spawn_scoped(scope, run)
                    .ok()
            })
            .collect();
        run();
        for other in others {
            if let Err(panic) = other.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::on_cores;

    #[test]
    fn every_item_is_worked_on_once_however_the_items_are_split() {
        for len in [0, 1, 7, 255, 256, 1000, 1001] {
            let mut items = vec![0u32; len];
            on_cores(&mut items, 8, |part| part.iter_mut().for_each(|i| *i += 1));
            assert!(items.iter().all(|i| *i == 1), "{len} items");
        }
    }
}
