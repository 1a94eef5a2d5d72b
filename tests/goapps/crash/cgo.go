//go:build cgo

package main

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <stdint.h>
#include <unistd.h>

extern void goCallbackBlock(void);

// block_in_c never returns: the calling goroutine stays in a cgo call.
static void block_in_c(void) { for (;;) sleep(1000); }

// call_back_into_go calls an exported Go function that blocks, so the
// goroutine's stack runs Go -> C -> Go.
static void call_back_into_go(void) { goCallbackBlock(); }

// Hooks for runtime.SetCgoTraceback (layouts from its documentation). The
// traceback is glibc's backtrace() from wherever the runtime calls it.
struct cgoTracebackArg { uintptr_t context, sigContext; uintptr_t *buf; uintptr_t max; };
struct cgoSymbolizerArg {
	uintptr_t pc; const char *file; uintptr_t lineno; const char *funcName;
	uintptr_t entry, more, data;
};

void grprof_traceback(void *p) {
	struct cgoTracebackArg *arg = p;
	void *pcs[32];
	int n = backtrace(pcs, 32);
	uintptr_t j = 0;
	for (int i = 0; i < n && j < arg->max; i++) arg->buf[j++] = (uintptr_t)pcs[i];
	if (j < arg->max) arg->buf[j] = 0;
}

// grprof_symbolizer names C functions through the dynamic symbol table.
void grprof_symbolizer(void *p) {
	struct cgoSymbolizerArg *arg = p;
	Dl_info info;
	arg->file = 0; arg->lineno = 0; arg->more = 0; arg->funcName = 0; arg->entry = 0;
	if (arg->pc != 0 && dladdr((void *)arg->pc, &info) && info.dli_sname) {
		arg->funcName = info.dli_sname;
		arg->entry = (uintptr_t)info.dli_saddr;
	}
}

// crash_in_c writes through a NULL pointer inside C: a fatal signal, not a panic.
static void crash_in_c(void) { volatile int *p = 0; *p = 1; }

// warm_backtrace loads the unwinder once, outside any signal handler.
static void warm_backtrace(void) { void *pcs[4]; backtrace(pcs, 4); }
*/
import "C"

import (
	"runtime"
	"unsafe"
)

func init() {
	register("cgo", modeCgo)
	register("cgo-traceback", modeCgoTraceback)
	register("cgo-symbolizer", modeCgoSymbolizer)
	register("cgo-segv", modeCgoSegv)
}

// modeCgoSegv crashes inside C with parked goroutines around: the signal
// handler prints "SIGSEGV: segmentation violation", every goroutine and the
// registers; at GOTRACEBACK=crash every M dumps its stack.
func modeCgoSegv(t *Truth) {
	startParked(t, fewKinds)
	self(t, "syscall", "main._Cfunc_crash_in_c")
	t.Scope = "all"
	t.Prologue = []string{"SIGSEGV: segmentation violation", "signal arrived during cgo execution"}
	if goMinor() < 21 { // seen on 1.19: a throw from sigpanic instead
		t.Prologue = []string{"fatal error: unexpected signal during runtime execution"}
	}
	emit(t)
	C.crash_in_c()
}

// modeCgoTraceback installs a C traceback function without a symbolizer, so
// C frames print as "non-Go function at pc=0x...".
func modeCgoTraceback(t *Truth) {
	C.warm_backtrace()
	runtime.SetCgoTraceback(0, unsafe.Pointer(C.grprof_traceback), nil, nil)
	modeCgo(t)
}

// modeCgoSymbolizer adds a dladdr symbolizer: C frames print with names.
func modeCgoSymbolizer(t *Truth) {
	C.warm_backtrace()
	runtime.SetCgoTraceback(0, unsafe.Pointer(C.grprof_traceback), nil, unsafe.Pointer(C.grprof_symbolizer))
	modeCgo(t)
}

// modeCgo parks one goroutine inside C and one inside a Go callback called
// from C, then waits for SIGQUIT.
func modeCgo(t *Truth) {
	startParked(t, []string{"chanrecv"})
	ids := make(chan int64)
	go parkInC(ids)
	t.Goroutines = append(t.Goroutines, G{ID: <-ids, State: "syscall", Func: "main._Cfunc_block_in_c",
		Creator: t.Current, CreatedBy: "main.modeCgo", Note: "blocked in C sleep()"})
	go parkInCallback(ids)
	t.Goroutines = append(t.Goroutines, G{ID: <-ids, State: "chan receive", Func: "main.goCallbackBlock",
		Creator: t.Current, CreatedBy: "main.modeCgo", Locked: true,
		Note: "Go callback from C; locked to its thread while in the callback"})
	settle()
	self(t, "chan receive", "main.blockMain")
	t.Scope = "all"
	t.Prologue = []string{"SIGQUIT: quit"}
	emit(t)
	ready()
	blockMain()
}

var callbackIDs chan<- int64

//go:noinline
func parkInC(ids chan<- int64) {
	ids <- goid()
	C.block_in_c()
}

//go:noinline
func parkInCallback(ids chan<- int64) {
	callbackIDs = ids
	C.call_back_into_go()
}
