#!/bin/bash
# A sample batch script for one run of the model, outside any sweep:
#   datalad slurm-schedule -i model -o runs/single sbatch job.sh
#   datalad slurm-finish --wait
#SBATCH --job-name=model-single
#SBATCH --time=00:05:00
#SBATCH --mem=200M
#SBATCH --output=runs/single/slurm-%j.out
export COMPONENT_PATH=model/components OUTPUT_DIR=runs/single
mkdir -p "$OUTPUT_DIR"
python3 model/run_model.py model/simulation_config.json
