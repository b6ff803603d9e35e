//! Phrase matches with slop (`"a b"~2`), counted exactly as tantivy 0.27's
//! phrase scorer counts them (`query/phrase_query/phrase_scorer.rs`, MIT):
//! the two functions below are its `intersection_count_with_slop` and
//! `intersection_count_with_carrying_slop`, which tantivy does not export.
//! Its count depends on the order it takes the words in (the cheapest
//! posting list first), so [`count`] is given the lists in that order.

/// How many matches with at most `slop` moves the position lists `lists`
/// (one per word, each shifted to its offset in the phrase, in tantivy's
/// order) hold.
pub(super) fn count(lists: &[Vec<u32>], slop: u32) -> u32 {
    let Some((first, rest)) = lists.split_first() else {
        return 0;
    };
    let Some((last, middle)) = rest.split_last() else {
        return 0;
    };
    let mut left = first.clone();
    if middle.is_empty() {
        return intersection_count_with_slop(&mut left, last, slop, false) as u32;
    }
    let mut left_slops = Vec::new();
    let (mut positions_buffer, mut slops_buffer) = (Vec::new(), Vec::new());
    for right in middle {
        intersection_count_with_carrying_slop(
            &mut left,
            &mut left_slops,
            right,
            slop,
            true,
            &mut positions_buffer,
            &mut slops_buffer,
        );
        if left.is_empty() {
            return 0;
        }
    }
    intersection_count_with_carrying_slop(
        &mut left,
        &mut left_slops,
        last,
        slop,
        false,
        &mut positions_buffer,
        &mut slops_buffer,
    )
}

fn intersection_count_with_slop(
    left_positions: &mut Vec<u32>,
    right_positions: &[u32],
    slop: u32,
    update_left: bool,
) -> usize {
    let mut left_index = 0;
    let mut right_index = 0;
    let mut count = 0;
    let left_len = left_positions.len();
    let right_len = right_positions.len();
    while left_index < left_len && right_index < right_len {
        let left_val = left_positions[left_index];
        let right_val = right_positions[right_index];

        let distance = left_val.abs_diff(right_val);
        if distance <= slop {
            while left_index + 1 < left_len {
                // there could be a better match
                let next_left_val = left_positions[left_index + 1];
                if next_left_val > right_val {
                    // the next value is outside the range, so current one is the best.
                    break;
                }
                // the next value is better.
                left_index += 1;
            }

            // store the match in left.
            if update_left {
                left_positions[count] = right_val;
            }
            count += 1;
            left_index += 1;
            right_index += 1;
        } else if left_val < right_val {
            left_index += 1;
        } else {
            right_index += 1;
        }
    }
    if update_left {
        left_positions.truncate(count);
    }

    count
}

fn intersection_count_with_carrying_slop(
    left_positions: &mut Vec<u32>,
    left_slops: &mut Vec<u8>,
    right_positions: &[u32],
    max_slop: u32,
    update_left: bool,
    positions_buffer: &mut Vec<u32>,
    slops_buffer: &mut Vec<u8>,
) -> u32 {
    let mut left_index = 0;
    let mut right_index = 0;
    let mut count = 0;

    if left_positions.is_empty() || right_positions.is_empty() {
        if update_left {
            left_positions.clear();
            left_slops.clear();
        }
        return 0;
    }

    let add_val = |val: (u8, u32), new_left: &mut Vec<u32>, new_slops: &mut Vec<u8>| {
        if update_left {
            match (new_left.last(), new_slops.last_mut()) {
                (Some(&last), Some(last_slop)) if last == val.1 => {
                    *last_slop = (*last_slop).min(val.0);
                }
                _ => {
                    new_left.push(val.1);
                    new_slops.push(val.0);
                }
            }
        }
    };
    loop {
        let left_val = left_positions[left_index];
        let slop_so_far = left_slops.get(left_index).cloned().unwrap_or(0);
        let right_val = right_positions[right_index];

        let distance = slop_so_far as u32 + left_val.abs_diff(right_val);
        if distance <= max_slop {
            let (smaller_val, larger_val, mut smaller_val_idx, smaller_val_positions) =
                if left_val < right_val {
                    (left_val, right_val, left_index, left_positions.as_slice())
                } else {
                    (right_val, left_val, right_index, right_positions)
                };

            let mut new_slop = distance;
            add_val(
                (new_slop as u8, smaller_val),
                positions_buffer,
                slops_buffer,
            );
            while smaller_val_idx + 1 < smaller_val_positions.len() {
                // there could be a better match
                let next_val = smaller_val_positions[smaller_val_idx + 1];
                if next_val > larger_val {
                    // the next value is outside the range, so current one is the best.
                    break;
                }
                let distance = next_val.abs_diff(larger_val);

                // the next value is better.
                smaller_val_idx += 1;
                // better slop
                new_slop = slop_so_far as u32 + distance;
                add_val((new_slop as u8, next_val), positions_buffer, slops_buffer);
            }

            add_val((new_slop as u8, larger_val), positions_buffer, slops_buffer);
            count += 1;
            left_index += 1;
            right_index += 1;
        } else if left_val < right_val {
            left_index += 1;
        } else {
            right_index += 1;
        }

        if left_index >= left_positions.len() || right_index >= right_positions.len() {
            // finish rest
            if left_index >= left_positions.len() {
                let left_val = left_positions.last().copied().unwrap_or_default();
                let slop_so_far: u8 = *left_slops.last().unwrap_or(&0);
                for right_val in &right_positions[right_index..] {
                    let new_slop = left_val.abs_diff(*right_val) + slop_so_far as u32;
                    if new_slop <= max_slop {
                        add_val((new_slop as u8, *right_val), positions_buffer, slops_buffer);
                    }
                }
            } else {
                let right_val = right_positions.last().copied().unwrap_or_default();
                for (left_idx, &left_val) in left_positions.iter().enumerate().skip(left_index) {
                    let slop_so_far = *left_slops.get(left_idx).unwrap_or(&0);
                    let new_slop = left_val.abs_diff(right_val) + slop_so_far as u32;
                    if new_slop <= max_slop {
                        add_val((new_slop as u8, left_val), positions_buffer, slops_buffer);
                    }
                }
            };

            break;
        }
    }
    if update_left {
        std::mem::swap(left_positions, positions_buffer);
        std::mem::swap(left_slops, slops_buffer);
        positions_buffer.clear();
        slops_buffer.clear();
    }

    count
}
