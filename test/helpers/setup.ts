// type-graphql reads decorator metadata through reflect-metadata; load it before any resolver class.
import "reflect-metadata";
