#pragma once
// The step journal moved to common/ (recovery's backup and restore use it too).
#include "common/step_journal.hpp"
