/* always-ok: the smallest policy in C; it reports no violations.
 * Build: clang --target=wasm32 -nostdlib -Wl,--no-entry -o always_ok.wasm always_ok.c */
#include <stdint.h>

__attribute__((import_module("opsdeploy"), import_name("set_output")))
void set_output(const char *ptr, int32_t len);

/* Optional metadata. clang puts data with a `section` attribute into a data
 * segment, so the custom section is written in assembly, as rustc does. */
__asm__(".section .custom_section.opsdeploy.metadata,\"\",@\n"
        ".ascii \"{\\\"abi_version\\\":1,\\\"name\\\":\\\"always-ok\\\",\\\"reads\\\":[]}\"\n"
        ".text\n");

/* A bump allocator after the module's static data: the instance is dropped
 * after one evaluation, so nothing is ever freed. */
extern unsigned char __heap_base;
static uintptr_t next_free = (uintptr_t)&__heap_base;

__attribute__((export_name("opsdeploy_alloc")))
void *opsdeploy_alloc(int32_t len) {
    uintptr_t start = (next_free + 7) & ~(uintptr_t)7;
    uintptr_t end = start + (uint32_t)len;
    uintptr_t have = __builtin_wasm_memory_size(0) * 65536;
    if (end > have && __builtin_wasm_memory_grow(0, (end - have + 65535) / 65536) == (uintptr_t)-1)
        return 0;
    next_free = end;
    return (void *)start;
}

__attribute__((export_name("opsdeploy_abi_version")))
int32_t opsdeploy_abi_version(void) { return 1; }

__attribute__((export_name("opsdeploy_evaluate")))
int32_t opsdeploy_evaluate(const char *input, int32_t len) {
    static const char out[] = "{\"violations\":[]}";
    (void)input;
    (void)len;
    set_output(out, sizeof out - 1); /* the JSON without the string's NUL */
    return 0;
}
