// Runs sworn's CUDA kernels on the host (see host.h): a grid's blocks spread over a few OS
// threads (SWORN_SHIM_THREADS, default: the CPU's), each block's threads as fibers on one of
// them. Every launch is self-contained and all state is thread-local, so tests may launch from
// several threads at once.
#include "host.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <cstdio>
#include <functional>
#include <utility>
#include <vector>

#include "../kernels.cu"

namespace sworn_shim {

enum State { RUNNABLE, AT_WARP, AT_BLOCK, DONE };

struct Fiber {
    void* sp = nullptr;
    char* stack = nullptr;
    dim3 tid{0, 0, 0};
    unsigned linear = 0;
    State state = DONE;
    unsigned parity = 0;  // which exchange slot this lane's next shuffle uses
};

struct Block {
    std::vector<Fiber*> fibers;
    std::vector<uint64_t> exchange;  // [warp][parity][lane]
    std::function<void()> kernel;
    void* sched_sp = nullptr;
};

thread_local Fiber* current = nullptr;
thread_local dim3 block_idx, block_dim, grid_dim;
thread_local Block* block = nullptr;
// The fibers of this OS thread, reused by every block it runs, freed when the thread ends.
struct Pool {
    std::vector<Fiber*> fibers;
    ~Pool() {
        for (Fiber* f : fibers) {
            delete[] f->stack;
            delete f;
        }
    }
};
thread_local Pool pool;

static const size_t STACK = 64 * 1024;

const dim3& thread_idx() { return current->tid; }

#if defined(__x86_64__)
// Saves the callee-saved registers on the current stack, stores the stack pointer in *from,
// and continues on the stack `to` (which was left the same way, or built by `new_stack`).
extern "C" void sworn_fiber_switch(void** from, void* to);
asm(R"(
.text
.p2align 4
.globl sworn_fiber_switch
.type sworn_fiber_switch,@function
sworn_fiber_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size sworn_fiber_switch, .-sworn_fiber_switch
.section .note.GNU-stack,"",@progbits
.text
)");
#elif defined(__aarch64__)
extern "C" void sworn_fiber_switch(void** from, void* to);
asm(R"(
.text
.p2align 4
.globl sworn_fiber_switch
.type sworn_fiber_switch,%function
sworn_fiber_switch:
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
    ret
.size sworn_fiber_switch, .-sworn_fiber_switch
.section .note.GNU-stack,"",%progbits
.text
)");
#else
#error "the host shim's fiber switch is written for x86-64 and aarch64"
#endif

// A fiber's life: run the block's kernel as its thread, report done, wait to be reused.
[[noreturn]] static void fiber_main() {
    for (;;) {
        block->kernel();
        current->state = DONE;
        sworn_fiber_switch(&current->sp, block->sched_sp);
    }
}

// A fresh stack whose first switch "returns" into fiber_main.
static void* new_stack(char* stack) {
    uintptr_t top = ((uintptr_t)(stack + STACK)) & ~(uintptr_t)15;
#if defined(__x86_64__)
    void** sp = (void**)top;
    *--sp = nullptr;               // fiber_main's (absent) return address: keeps the ABI alignment
    *--sp = (void*)&fiber_main;   // where the first `ret` goes
    for (int i = 0; i < 6; i++) *--sp = nullptr;  // rbp rbx r12-r15
    return sp;
#else
    uint64_t* sp = (uint64_t*)(top - 176);
    std::memset(sp, 0, 176);
    sp[11] = (uint64_t)&fiber_main;  // x30: where `ret` goes
    return sp;
#endif
}

static void yield(State s) {
    current->state = s;
    sworn_fiber_switch(&current->sp, block->sched_sp);
}

void sync_block() { yield(AT_BLOCK); }
void sync_warp() { yield(AT_WARP); }

uint64_t shuffle(uint64_t v, int m, int mode) {
    Fiber* f = current;
    unsigned lane = f->linear % 32, warp = f->linear / 32;
    unsigned par = f->parity;
    f->parity ^= 1;
    uint64_t* slots = &block->exchange[(warp * 2 + par) * 32];
    slots[lane] = v;
    yield(AT_WARP);
    unsigned src = mode == 0 ? (lane ^ (unsigned)m) : (unsigned)m;
    return slots[src % 32];
}

// Orders of a round: 0 ascending, 1 descending, otherwise a shuffle seeded by the order, the
// block and the round.
static void order_of(std::vector<unsigned>& ix, unsigned n, unsigned order, uint64_t salt) {
    ix.resize(n);
    for (unsigned i = 0; i < n; i++) ix[i] = order == 1 ? n - 1 - i : i;
    if (order >= 2) {
        uint64_t x = 0x9E3779B97F4A7C15ull * (salt + order) + 1;
        for (unsigned i = n; i > 1; i--) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            std::swap(ix[i - 1], ix[x % i]);
        }
    }
}

static int run_block(unsigned nthreads, unsigned order, uint64_t salt, char* err, size_t errlen) {
    Block& b = *block;
    while (pool.fibers.size() < nthreads) {
        Fiber* f = new Fiber();
        f->stack = new char[STACK];
        f->sp = new_stack(f->stack);
        pool.fibers.push_back(f);
    }
    b.fibers.assign(pool.fibers.begin(), pool.fibers.begin() + nthreads);
    unsigned warps = (nthreads + 31) / 32;
    b.exchange.assign((size_t)warps * 64, 0);
    for (unsigned i = 0; i < nthreads; i++) {
        Fiber* f = b.fibers[i];
        f->linear = i;
        f->tid = dim3{i % block_dim.x, (i / block_dim.x) % block_dim.y, i / (block_dim.x * block_dim.y)};
        f->state = RUNNABLE;
        f->parity = 0;
    }
    std::vector<unsigned> ix;
    for (uint64_t round = 0;; round++) {
        order_of(ix, nthreads, order, salt * 1000003u + round);
        for (unsigned i : ix) {
            Fiber* f = b.fibers[i];
            if (f->state != RUNNABLE) continue;
            current = f;
            sworn_fiber_switch(&b.sched_sp, f->sp);
            current = nullptr;
        }
        // Release the waits that everyone concerned has reached.
        bool all_done = true, all_at_block = true;
        for (Fiber* f : b.fibers) {
            if (f->state != DONE) all_done = false;
            if (f->state != DONE && f->state != AT_BLOCK) all_at_block = false;
        }
        if (all_done) return 0;
        bool released = false;
        if (all_at_block) {
            for (Fiber* f : b.fibers)
                if (f->state == AT_BLOCK) f->state = RUNNABLE;
            released = true;
        }
        for (unsigned w = 0; w < warps; w++) {
            unsigned lo = w * 32, hi = std::min(nthreads, lo + 32);
            bool any = false, all = true;
            for (unsigned i = lo; i < hi; i++) {
                State s = b.fibers[i]->state;
                if (s == AT_WARP) any = true;
                else if (s != DONE) all = false;
            }
            if (any && all) {
                for (unsigned i = lo; i < hi; i++)
                    if (b.fibers[i]->state == AT_WARP) b.fibers[i]->state = RUNNABLE;
                released = true;
            }
        }
        if (!released) {
            // Fibers left mid-kernel start over on a fresh stack next time.
            for (Fiber* f : b.fibers)
                if (f->state != DONE) {
                    f->state = DONE;
                    f->sp = new_stack(f->stack);
                }
            std::snprintf(err, errlen, "deadlock: threads wait at barriers that cannot all be reached (divergent __syncthreads or warp operation)");
            return 1;
        }
    }
}

// Calls `k` with the CUDA-style parameter array `args` (one pointer per parameter).
template <typename... A, size_t... I>
static void call_with(void (*k)(A...), void** args, std::index_sequence<I...>) {
    k(*static_cast<std::remove_reference_t<A>*>(args[I])...);
}
template <typename... A>
static std::function<void()> bind(void (*k)(A...), void** args) {
    return [k, args] { call_with(k, args, std::index_sequence_for<A...>{}); };
}

struct Entry {
    const char* name;
    std::function<void()> (*make)(void** args);
};

#define ENTRY(k) {#k, [](void** a) { return bind(&k, a); }}
static const Entry ENTRIES[] = {
    ENTRY(quantize_q8), ENTRY(qmatvec), ENTRY(qmatmul), ENTRY(f32matmul), ENTRY(embed),   ENTRY(rmsnorm),
    ENTRY(rope),        ENTRY(attention), ENTRY(silu_mul), ENTRY(gelu_mul), ENTRY(add), ENTRY(scale),
    ENTRY(add_rows),    ENTRY(store_kv),
};

}  // namespace sworn_shim

using namespace sworn_shim;

// Runs kernel `name` over the grid, as cuLaunchKernel would with `args`. `order` picks the
// thread order (0 ascending, 1 descending, >= 2 shuffled) and the block order alike. Returns 0,
// or 1 with a message in `err`.
extern "C" int sworn_shim_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                 unsigned bz, void** args, unsigned order, char* err, size_t errlen) {
    const Entry* e = nullptr;
    for (const Entry& x : ENTRIES)
        if (std::strcmp(x.name, name) == 0) e = &x;
    if (!e) {
        std::snprintf(err, errlen, "no kernel named %s", name);
        return 1;
    }
    unsigned nthreads = bx * by * bz;
    if (nthreads == 0 || nthreads > 1024 || gx == 0 || gy == 0 || gz == 0) {
        std::snprintf(err, errlen, "bad launch shape %ux%ux%u blocks of %ux%ux%u", gx, gy, gz, bx, by, bz);
        return 1;
    }
    unsigned nblocks = gx * gy * gz;
    std::vector<unsigned> bix;
    order_of(bix, nblocks, order, 0x5eed);
    // Blocks are independent (the kernels share nothing between them), so they may run on
    // several OS threads at once; each thread has its own fibers and shared memory.
    unsigned workers = std::max(1u, std::min(std::thread::hardware_concurrency(), nblocks / 64));
    if (const char* env = std::getenv("SWORN_SHIM_THREADS")) workers = std::max(1, std::atoi(env));
    std::atomic<unsigned> next{0};
    std::atomic<int> failed{0};
    std::mutex err_lock;
    auto work = [&] {
        Block b;
        b.kernel = e->make(args);
        block = &b;
        grid_dim = dim3{gx, gy, gz};
        block_dim = dim3{bx, by, bz};
        char msg[512] = {0};
        for (unsigned k = next++; k < nblocks && !failed.load(); k = next++) {
            unsigned i = bix[k];
            block_idx = dim3{i % gx, (i / gx) % gy, i / (gx * gy)};
            if (run_block(nthreads, order, i, msg, sizeof msg) != 0) {
                std::lock_guard<std::mutex> g(err_lock);
                if (!failed.exchange(1)) std::snprintf(err, errlen, "%s", msg);
            }
        }
        block = nullptr;
    };
    if (workers == 1) {
        work();
    } else {
        std::vector<std::thread> ts;
        for (unsigned w = 0; w < workers; w++) ts.emplace_back(work);
        for (auto& t : ts) t.join();
    }
    return failed.load();
}

// How many kernels the shim knows, and their names (for the tests' coverage check).
extern "C" unsigned sworn_shim_kernels(const char** names, unsigned cap) {
    unsigned n = sizeof(ENTRIES) / sizeof(ENTRIES[0]);
    for (unsigned i = 0; i < n && i < cap; i++) names[i] = ENTRIES[i].name;
    return n;
}
