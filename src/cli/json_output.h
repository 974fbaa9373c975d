// JSON views of library results for `--json` output (field names end in
// _bytes where the value is a byte count).
#pragma once

#include <nlohmann/json.hpp>

#include "modelgrid/estimate_json.h"  // EstimateToJson, the estimate view
#include "modelgrid/placement.h"

namespace modelgrid::cli {

nlohmann::json PlanToJson(const Plan& plan);

}  // namespace modelgrid::cli
