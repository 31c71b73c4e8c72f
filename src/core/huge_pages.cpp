#include "core/huge_pages.h"

#include <sys/mman.h>

#include <cstdlib>

namespace onebit {

void* huge_page_alloc(size_t bytes) {
    constexpr size_t kHuge = size_t(2) << 20;
    if (bytes < kHuge) {
        void* p = std::malloc(bytes ? bytes : 1);
        if (!p) throw std::bad_alloc();
        return p;
    }
    const size_t size = (bytes + kHuge - 1) / kHuge * kHuge;
    void* p = std::aligned_alloc(kHuge, size);
    if (!p) throw std::bad_alloc();
    madvise(p, size, MADV_HUGEPAGE);  // advice only: without huge pages the buffer still works
    return p;
}

void huge_page_free(void* p) noexcept { std::free(p); }

}  // namespace onebit
