/* Fast callbacks for the rv32 simulator, registered through unicorn's C API.
 *
 * Built by simulator.py into a host shared library on first use (`python -m ziglang cc -shared`)
 * and cached under ~/.cache/tinydeploy/. It uses no libc and no unicorn headers: the few unicorn
 * entry points it needs are passed in as function pointers, so the library never links against
 * libunicorn and cannot pick up a different copy of it.
 *
 * Counting scheme (see simulator.py for the full argument):
 *   prefix[i] = number of instruction starts in [lo, lo + 2*i), built from the ELF's .text.
 *   A block [a, a+size) holds prefix[(a+size-lo)/2] - prefix[(a-lo)/2] instructions.
 *   The block hook runs when a block is entered, so `count` includes the whole current block;
 *   last_before/last_start let the counter register and the Python side compute the exact
 *   number of instructions retired before any PC inside the current block.
 */
#include <stdint.h>

typedef int (*uc_emu_stop_fn)(void *uc);
typedef int (*uc_hook_add_fn)(void *uc, uint64_t *hh, int type, void *callback, void *user_data,
                              uint64_t begin, uint64_t end, ...);
typedef int (*uc_mmio_map_fn)(void *uc, uint64_t address, uint64_t size, void *read_cb,
                              void *user_data_read, void *write_cb, void *user_data_write);

enum {
    F_LIMIT = 1,        /* count passed `limit` */
    F_CONSOLE_FULL = 2, /* console buffer full: the store was aborted, Python drains and resumes */
    F_OUTSIDE = 4,      /* a block started outside the instruction table (bad_pc) */
    F_REPLAY = 8,       /* counter read at an unknown PC: aborted, Python resumes at that PC */
};

enum { MMIO_CONSOLE = 0x0, MMIO_CYCLES_LO = 0x4, MMIO_CYCLES_HI = 0x8 };
enum { UC_HOOK_BLOCK = 1 << 3 };

/* Layout mirrored by simulator._State (ctypes): 64-bit fields first, then pointers, then 32-bit. */
struct td_sim {
    uint64_t count, limit, last_before;
    const uint32_t *prefix;
    uint8_t *console;
    uc_emu_stop_fn stop;
    uint32_t lo, nhalf, last_start, last_end;
    uint32_t load_pc, hi_latch, flags, resume_pc;
    uint32_t resume_armed, console_len, console_cap, bad_pc;
};

void td_block_hook(void *uc, uint64_t address, uint32_t size, struct td_sim *s)
{
    uint32_t a = (uint32_t)address - s->lo; /* wraps to a huge value below lo */
    uint32_t b = a + size;
    if (a > 2u * s->nhalf || b > 2u * s->nhalf) {
        s->flags |= F_OUTSIDE;
        s->bad_pc = (uint32_t)address;
        s->stop(uc);
        return;
    }
    s->last_before = s->count;
    s->last_start = (uint32_t)address;
    s->last_end = (uint32_t)address + size;
    s->count += s->prefix[b >> 1] - s->prefix[a >> 1];
    if (s->count > s->limit) {
        s->flags |= F_LIMIT;
        s->stop(uc);
    }
}

/* Instructions retired before the instruction at `pc` of the current block. */
static uint64_t retired_before(const struct td_sim *s, uint32_t pc)
{
    return s->last_before + s->prefix[(pc - s->lo) >> 1] - s->prefix[(s->last_start - s->lo) >> 1];
}

uint64_t td_mmio_read(void *uc, uint64_t offset, unsigned size, struct td_sim *s)
{
    (void)size;
    if (offset == MMIO_CYCLES_LO) {
        uint32_t pc;
        /* The PC register is not exact inside an mmio callback (it holds the block start), so the
         * load's PC must be known: either the one in td_cycles(), or the first instruction of a
         * block Python resumed at after a replay stop. */
        if (s->resume_armed && s->last_start == s->resume_pc) {
            pc = s->resume_pc;
            s->resume_armed = 0;
        } else if (s->load_pc >= s->last_start && s->load_pc < s->last_end) {
            pc = s->load_pc;
        } else {
            s->flags |= F_REPLAY;
            s->stop(uc);
            return 0;
        }
        uint64_t v = retired_before(s, pc);
        s->hi_latch = (uint32_t)(v >> 32);
        return (uint32_t)v;
    }
    if (offset == MMIO_CYCLES_HI)
        return s->hi_latch;
    return 0;
}

void td_mmio_write(void *uc, uint64_t offset, unsigned size, uint64_t value, struct td_sim *s)
{
    (void)size;
    if (offset != MMIO_CONSOLE)
        return;
    if (s->console_len >= s->console_cap) {
        s->flags |= F_CONSOLE_FULL;
        s->stop(uc);
        return;
    }
    s->console[s->console_len++] = (uint8_t)value;
}

/* Register the counting block hook on `uc` (the cluster simulator serves its peripherals itself);
 * returns the unicorn error (0 = UC_ERR_OK). */
int td_attach_block(void *uc, struct td_sim *s, uc_hook_add_fn hook_add, uint64_t *hook_handle)
{
    return hook_add(uc, hook_handle, UC_HOOK_BLOCK, (void *)td_block_hook, s, 1, 0);
}

/* Register the block hook and the rv32 mmio callbacks; returns the first unicorn error. */
int td_attach(void *uc, struct td_sim *s, uc_hook_add_fn hook_add, uc_mmio_map_fn mmio_map,
              uint64_t mmio_base, uint64_t mmio_size, uint64_t *hook_handle)
{
    int err = td_attach_block(uc, s, hook_add, hook_handle);
    if (err)
        return err;
    return mmio_map(uc, mmio_base, mmio_size, (void *)td_mmio_read, s, (void *)td_mmio_write, s);
}
