package reduce

// PrepareResume is prepareResume, for the tests of package reduce_test.
var PrepareResume = prepareResume
