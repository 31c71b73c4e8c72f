// An allocator for large, long-lived buffers that are read in scattered rows (the CPU KV cache):
// blocks of 2 MiB or more are 2 MiB aligned and advised for transparent huge pages
// (madvise MADV_HUGEPAGE; where the system allows them), so reading a row of each of thousands
// of positions does not miss the TLB on every row. Smaller blocks come from malloc.
#pragma once

#include <cstddef>
#include <new>

namespace onebit {

void* huge_page_alloc(size_t bytes);  // throws std::bad_alloc
void huge_page_free(void* p) noexcept;

template <typename T>
struct HugePageAllocator {
    using value_type = T;
    HugePageAllocator() = default;
    template <typename U>
    HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
    T* allocate(size_t n) { return static_cast<T*>(huge_page_alloc(n * sizeof(T))); }
    void deallocate(T* p, size_t) noexcept { huge_page_free(p); }
    template <typename U>
    bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
};

}  // namespace onebit
