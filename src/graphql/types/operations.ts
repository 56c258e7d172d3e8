/** Inputs and results of the six metered operations (contract: schema.graphql). */
import { Field, InputType, Int, ObjectType } from "type-graphql";
import { AiModel } from "./enums.js";

@InputType({ description: "An AI task." })
export class AiTaskInput {
  @Field(() => String, { description: "The prompt, 1 to 100,000 characters." })
  prompt!: string;

  @Field(() => AiModel, { nullable: true, defaultValue: AiModel.SMALL, description: "Model size; LARGE costs five times as much." })
  model?: AiModel;

  @Field(() => Int, { nullable: true, defaultValue: 256, description: "Most tokens to generate, 1 to 8,192." })
  maxTokens?: number;
}

@ObjectType({ description: "What an AI task produced." })
export class AiTaskResult {
  @Field(() => String, { description: "Generated text." })
  output!: string;

  @Field(() => AiModel, { description: "Model that ran." })
  model!: AiModel;

  @Field(() => Int, { description: "Tokens generated." })
  tokensUsed!: number;
}

@InputType({ description: "A lead search." })
export class LeadSearchInput {
  @Field(() => String, { description: "What to search for." })
  query!: string;

  @Field(() => String, { nullable: true, description: "Where." })
  location?: string | null;

  @Field(() => Int, { nullable: true, defaultValue: 25, description: "Leads to return, 1 to 500; one credit each." })
  limit?: number;
}

@ObjectType({ description: "A business lead." })
export class Lead {
  @Field(() => String, { description: "Contact name." })
  name!: string;

  @Field(() => String, { nullable: true, description: "Company." })
  company?: string | null;

  @Field(() => String, { nullable: true, description: "E-mail address." })
  email?: string | null;

  @Field(() => String, { nullable: true, description: "Phone number." })
  phone?: string | null;

  @Field(() => String, { nullable: true, description: "City." })
  city?: string | null;
}

@ObjectType({ description: "Leads found." })
export class LeadSearchResult {
  @Field(() => [Lead], { description: "The leads returned." })
  leads!: Lead[];

  @Field(() => Int, { description: "Leads matching in all." })
  total!: number;
}

@InputType({ description: "An MLS search." })
export class MlsSearchInput {
  @Field(() => String, { description: "Area to search." })
  area!: string;

  @Field(() => Int, { nullable: true, defaultValue: 25, description: "Listings to return, 1 to 500." })
  limit?: number;

  @Field(() => Boolean, { nullable: true, defaultValue: false, description: "Include each listing's history; doubles the price." })
  includeHistory?: boolean;
}

@ObjectType({ description: "An MLS listing." })
export class MlsListing {
  @Field(() => String, { description: "MLS number." })
  mlsId!: string;

  @Field(() => String, { description: "Street address." })
  address!: string;

  @Field(() => Int, { description: "Asking price in dollars." })
  price!: number;

  @Field(() => String, { description: "Listing status." })
  status!: string;

  @Field(() => [String], { nullable: true, description: "Past events, when history was asked for." })
  history?: string[] | null;
}

@ObjectType({ description: "Listings found." })
export class MlsSearchResult {
  @Field(() => [MlsListing], { description: "The listings." })
  listings!: MlsListing[];
}

@InputType({ description: "A domain to harvest." })
export class HarvestInput {
  @Field(() => String, { description: "Host name, e.g. example.com." })
  domain!: string;

  @Field(() => [String], { description: "1 to 10 distinct sources: bing, crtsh, dnsdumpster, duckduckgo, github, hackertarget, otx, rapiddns, urlscan, yahoo." })
  sources!: string[];

  @Field(() => Int, { nullable: true, defaultValue: 100, description: "Results per source, 1 to 1,000." })
  limit?: number;
}

@ObjectType({ description: "What harvesting found." })
export class HarvestResult {
  @Field(() => [String], { description: "E-mail addresses." })
  emails!: string[];

  @Field(() => [String], { description: "Host names." })
  hosts!: string[];
}

@InputType({ description: "A person to trace." })
export class SkipTraceRecord {
  @Field(() => String, { description: "First name." })
  firstName!: string;

  @Field(() => String, { description: "Last name." })
  lastName!: string;

  @Field(() => String, { description: "Street address." })
  address!: string;

  @Field(() => String, { nullable: true, description: "City." })
  city?: string | null;

  @Field(() => String, { nullable: true, description: "State." })
  state?: string | null;

  @Field(() => String, { nullable: true, description: "ZIP code." })
  zip?: string | null;
}

@InputType({ description: "People to trace." })
export class SkipTraceInput {
  @Field(() => [SkipTraceRecord], { description: "1 to 1,000 records; one credit each." })
  records!: SkipTraceRecord[];
}

@ObjectType({ description: "Contacts found for one record." })
export class SkipTraceMatch {
  @Field(() => Int, { description: "Index of the record in the input." })
  recordIndex!: number;

  @Field(() => [String], { description: "Phone numbers." })
  phones!: string[];

  @Field(() => [String], { description: "E-mail addresses." })
  emails!: string[];
}

@ObjectType({ description: "Skip trace results." })
export class SkipTraceResult {
  @Field(() => [SkipTraceMatch], { description: "The records that matched, one match each (its recordIndex says which record); a record without a match has none." })
  matches!: SkipTraceMatch[];
}

@InputType({ description: "Phone numbers to validate." })
export class PhoneLookupInput {
  @Field(() => [String], { description: "1 to 1,000 phone numbers." })
  phones!: string[];

  @Field(() => Boolean, { nullable: true, defaultValue: false, description: "Also look up the carrier; doubles the price." })
  carrierLookup?: boolean;
}

@ObjectType({ description: "What is known of one phone number." })
export class PhoneInfo {
  @Field(() => String, { description: "The number as given." })
  phone!: string;

  @Field(() => Boolean, { description: "Whether it is a valid number." })
  valid!: boolean;

  @Field(() => String, { nullable: true, description: "mobile, landline or voip, with carrier lookup." })
  lineType?: string | null;

  @Field(() => String, { nullable: true, description: "Carrier, with carrier lookup." })
  carrier?: string | null;
}

@ObjectType({ description: "Phone lookup results." })
export class PhoneLookupResult {
  @Field(() => [PhoneInfo], { description: "One result per phone, in input order." })
  results!: PhoneInfo[];
}
