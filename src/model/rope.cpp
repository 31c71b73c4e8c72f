#include "model/rope.h"

#include <algorithm>
#include <cmath>

namespace onebit::model {

RopeTable rope_table(const ModelConfig& c) {
    const int64_t dim = c.head_dim, half = dim / 2;
    const double base = c.rope_theta;
    const RopeScaling& rs = c.rope_scaling;
    RopeTable t;
    t.inv_freq.resize(static_cast<size_t>(half));
    std::vector<double> inv(static_cast<size_t>(half));
    for (int64_t j = 0; j < half; ++j)
        inv[j] = 1.0 / std::pow(base, static_cast<double>(2 * j) / static_cast<double>(dim));
    if (rs.type == "linear") {
        for (double& f : inv) f /= rs.factor;
    } else if (rs.type == "llama3") {
        const double old_len = static_cast<double>(rs.original_max_position_embeddings);
        const double low_wavelen = old_len / rs.low_freq_factor, high_wavelen = old_len / rs.high_freq_factor;
        for (double& f : inv) {
            const double wavelen = 2 * M_PI / f;
            double g = wavelen > low_wavelen ? f / rs.factor : f;
            const double smooth = (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
            if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen))
                g = (1 - smooth) * g / rs.factor + smooth * g;
            f = g;
        }
    } else if (rs.type == "yarn") {
        const auto get_mscale = [](double scale, double m) {
            return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0;
        };
        double attention = 0;
        if (rs.attention_factor) attention = *rs.attention_factor;
        else if (rs.mscale && rs.mscale_all_dim && *rs.mscale && *rs.mscale_all_dim)
            attention = get_mscale(rs.factor, *rs.mscale) / get_mscale(rs.factor, *rs.mscale_all_dim);
        else attention = get_mscale(rs.factor, 1.0);
        const double max_pos = static_cast<double>(rs.original_max_position_embeddings);
        const auto correction_dim = [&](double rotations) {
            return (static_cast<double>(dim) * std::log(max_pos / (rotations * 2 * M_PI))) / (2 * std::log(base));
        };
        double low = correction_dim(rs.beta_fast), high = correction_dim(rs.beta_slow);
        if (rs.truncate) low = std::floor(low), high = std::ceil(high);
        low = std::max(low, 0.0);
        high = std::min(high, static_cast<double>(dim - 1));
        if (low == high) high += 0.001;
        for (int64_t j = 0; j < half; ++j) {
            const double ramp = std::clamp((static_cast<double>(j) - low) / (high - low), 0.0, 1.0);
            const double extrapolation = 1 - ramp;
            const double interp = inv[j] / rs.factor;
            inv[j] = interp * (1 - extrapolation) + inv[j] * extrapolation;
        }
        t.attention_factor = static_cast<float>(attention);
    }
    for (int64_t j = 0; j < half; ++j) t.inv_freq[j] = static_cast<float>(inv[j]);
    return t;
}

}  // namespace onebit::model
