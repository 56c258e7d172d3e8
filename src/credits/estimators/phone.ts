/** Prices lookupPhones: one credit per phone, two with carrier lookup. */
import type { z } from "zod";
import { defineEstimator } from "./estimator.js";
import { booleanOr, fieldArgs, inputObject, listOf, requiredText } from "./fields.js";

export const PHONE_MAX_PHONES = 1_000;
export const PHONE_MAX_CHARS = 32;

const phoneArgs = fieldArgs(
  inputObject({
    phones: listOf(requiredText(PHONE_MAX_CHARS), 1, PHONE_MAX_PHONES),
    carrierLookup: booleanOr(false),
  }),
);

export type PhoneArgs = z.output<typeof phoneArgs>;

export const phoneEstimator = defineEstimator<PhoneArgs>({
  name: "phone",
  description: "len(phones) credits, ×2 with carrierLookup",
  args: phoneArgs,
  estimate({ input }: PhoneArgs): number {
    return input.phones.length * (input.carrierLookup ? 2 : 1);
  },
});
