export { compileExpression, parseExpression } from './expr.ts';
export { type PatternJson, patternFromJson, patternJsonSchema, patternToJson, type StageJson } from './json.ts';
export {
  type BufNode,
  type CompiledNfa,
  type ComputationState,
  compile,
  type Ev,
  type Match,
  materialize,
  Nfa,
  type NfaState,
  type Timeout,
} from './nfa.ts';
export { CEP, type CepOptions, type CepOutput, freeze, PatternStream, type TimeMode, thaw } from './operator.ts';
export {
  AfterMatchSkipStrategy,
  type CepContext,
  type Cond,
  type ConditionFn,
  type ConsumingStrategy,
  Pattern,
  type Quantifier,
  type SkipStrategy,
  type WithinType,
} from './pattern.ts';
export { type RunResult, runPattern } from './run.ts';
