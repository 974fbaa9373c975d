#include "cli/table.h"

#include <fmt/format.h>

#include <algorithm>

namespace modelgrid::cli {

Table::Table(std::vector<std::string> headers, std::vector<size_t> right_aligned)
    : headers_(std::move(headers)), right_(headers_.size(), false) {
  for (size_t i : right_aligned) {
    if (i < right_.size()) right_[i] = true;
  }
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> width(headers_.size());
  for (size_t c = 0; c < headers_.size(); ++c) {
    width[c] = headers_[c].size();
    for (const auto& row : rows_) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c > 0) s += "  ";
      s += right_[c] ? fmt::format("{:>{}}", cells[c], width[c]) : fmt::format("{:<{}}", cells[c], width[c]);
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << '\n';
  };
  line(headers_);
  size_t total = 0;
  for (size_t w : width) total += w;
  out << std::string(total + 2 * (width.size() - 1), '-') << '\n';
  for (const auto& row : rows_) line(row);
}

}  // namespace modelgrid::cli
