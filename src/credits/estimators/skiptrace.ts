/** Prices skipTrace: one credit per record. */
import { z } from "zod";
import { defineEstimator } from "./estimator.js";
import { fieldArgs, inputObject, listOf, optionalText, requiredText } from "./fields.js";

export const SKIPTRACE_MAX_RECORDS = 1_000;

const record = inputObject({
  firstName: requiredText(200),
  lastName: requiredText(200),
  address: requiredText(200),
  city: optionalText(100),
  state: optionalText(100),
  zip: optionalText(100),
});

const skipTraceArgs = fieldArgs(
  inputObject({
    records: listOf(record, 1, SKIPTRACE_MAX_RECORDS),
  }),
);

export type SkipTraceArgs = z.output<typeof skipTraceArgs>;

export const skipTraceEstimator = defineEstimator<SkipTraceArgs>({
  name: "skiptrace",
  description: "len(records) credits (one per record)",
  args: skipTraceArgs,
  estimate({ input }: SkipTraceArgs): number {
    return input.records.length;
  },
});
