# bash completion for medattn: commands, their flags, and the fixed choices of some flags.
_medattn() {
  local cur prev cmd
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  cmd="${COMP_WORDS[1]}"
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W "diagnose train evaluate fit-ood merge info phantom --help --version" -- "$cur"))
    return
  fi
  case "$prev" in
    --format)
      if [[ $cmd == evaluate ]]; then COMPREPLY=($(compgen -W "table json" -- "$cur"));
      else COMPREPLY=($(compgen -W "table json jsonl csv" -- "$cur")); fi
      return ;;
    --method) COMPREPLY=($(compgen -W "saliency rollout gradcam attn-grad occlusion random centre" -- "$cur")); return ;;
    --head-fusion) COMPREPLY=($(compgen -W "mean max min" -- "$cur")); return ;;
    --operating-point) COMPREPLY=($(compgen -W "balanced sensitivity=0.95" -- "$cur")); return ;;
    -m|--model|--out|--heatmaps|--dicom-out|--masks|--val) COMPREPLY=($(compgen -d -- "$cur")); return ;;
  esac
  if [[ $cur == -* ]]; then
    local flags=""
    case "$cmd" in
      diagnose) flags="-m --model --format -o --output --heatmaps --dicom-out --uid-root --uid-seed --method --target --head-fusion --discard-ratio
                 --heatmap-alpha --contour --preview --no-preview --preview-width --ascii --window --frame --slice
                 --threads --batch-size --occlusion-patch --occlusion-stride --saliency-sigma --workers --resume
                 --shard --report -q --quiet --max-pixels --max-file-size --max-frames --ignore-scope --no-abstain --help" ;;
      merge) flags="-o --output --inputs --help" ;;
      train) flags="--out --val --val-fraction --split --val-split --classes --group-regex --epochs --batch-size --lr
                 --weight-decay --warmup-epochs --label-smoothing --ema --patience --image-size --stem --dim --depth
                 --heads --clahe --seed --hflip --no-augment --no-calibrate --operating-point --name --resume --threads
                 --modalities --body-part --view --population --intended-use --limitations --ood-percentile --help" ;;
      evaluate) flags="-m --model --split --format --roc --method --masks --randomization-check --no-deletion
                 --occlusion-patch --occlusion-stride --saliency-sigma --threads --ood --ood-limit --val-fraction --seed
                 --group-regex --help" ;;
      fit-ood) flags="-m --model --split --val --val-split --val-fraction --seed --group-regex --percentile --shrinkage
                 --feature --threads --help" ;;
      info) flags="-m --model --json --help" ;;
      phantom) flags="--out --count --seed --size --help" ;;
    esac
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return
  fi
  COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _medattn medattn
