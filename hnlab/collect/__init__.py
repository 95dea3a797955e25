"""Jobs that fetch from HN and write what they saw: the hourly collection and the minute
tracker, on one fetch-while-writing pipeline."""
