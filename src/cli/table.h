// A plain-text table for the CLI's human output: columns sized to their
// widest cell, numbers right-aligned.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace modelgrid::cli {

class Table {
 public:
  // `headers` fixes the number of columns. Columns whose index is in
  // `right_aligned` are right-aligned (numbers).
  Table(std::vector<std::string> headers, std::vector<size_t> right_aligned = {});

  // Adds a row; missing cells print empty, extra cells are dropped.
  void AddRow(std::vector<std::string> cells);

  // Writes the header, a rule and the rows to `out`.
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace modelgrid::cli
